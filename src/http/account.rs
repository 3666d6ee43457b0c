//! `/v1/account/shards` (admin): how many shards the sender pool drains. Changing it moves
//! queued messages to their new shards without reordering any recipient's messages: workers of
//! the old count hand their shards back before any worker of the new count starts.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use premise_wire::ShardCount;
use serde_json::{Value, json};

use super::auth::Admin;
use super::body::JsonBody;
use super::reply::{reply, reply_empty};
use super::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/account/shards", get(show).post(change))
}

async fn show(State(state): State<AppState>, _admin: Admin) -> Result<Response, ApiError> {
    let account = state.store.account().await?;
    Ok(reply(StatusCode::OK, json!({ "account": { "shards": account.shards } })))
}

async fn change(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let shards = ShardCount::parse_request(&body)?;
    let account = state.store.set_shards(shards.get()).await?;
    tracing::info!(shards = account.shards, generation = account.generation, by = %admin.username, "shard count set");
    Ok(reply_empty(StatusCode::CREATED))
}
