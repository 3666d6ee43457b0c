//! `/v1/services/*` (admin): on-demand maintenance, as On-Premises' Services node had it.
//!
//! `PUT /v1/services/message/gc` deletes at once what retention would delete on its next pass
//! (finished messages, customers' messages and media past their `[retention]` time, expired
//! records), never a queued message nor one whose webhook is still to be delivered.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::put;

use super::auth::Admin;
use super::reply::reply_empty;
use super::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/services/message/gc", put(collect_garbage))
}

async fn collect_garbage(
    State(state): State<AppState>,
    Admin(admin): Admin,
) -> Result<Response, ApiError> {
    let purged = state.retention.run().await?;
    tracing::info!(
        messages = purged.messages,
        inbound = purged.inbound,
        media = purged.media,
        expired = purged.expired,
        by = %admin.username,
        "message garbage collection"
    );
    Ok(reply_empty(StatusCode::OK))
}
