//! `/v1/settings/application` (admin): read, change the fields given, reset. Stored, so every
//! replica acts on the same settings.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use premise_wire::settings::{apply_patch, view};
use serde_json::{Value, json};

use super::auth::Admin;
use super::body::JsonBody;
use super::reply::{reply, reply_empty};
use super::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/settings/application", get(show).patch(change).delete(reset))
}

async fn show(State(state): State<AppState>, _admin: Admin) -> Result<Response, ApiError> {
    let (doc, _) = state.settings.get().await?;
    Ok(reply(StatusCode::OK, json!({ "settings": { "application": view(&doc) } })))
}

async fn change(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let (doc, _) = state.settings.get().await?;
    let doc = apply_patch(&doc, &patch)?;
    state.settings.put(doc).await?;
    tracing::info!(by = %admin.username, "application settings changed");
    Ok(reply_empty(StatusCode::OK))
}

async fn reset(State(state): State<AppState>, Admin(admin): Admin) -> Result<Response, ApiError> {
    state.settings.put(Value::Object(serde_json::Map::new())).await?;
    tracing::info!(by = %admin.username, "application settings reset to defaults");
    Ok(reply_empty(StatusCode::OK))
}
