//! `/v1/settings/application` (admin): read, change the fields given, reset. Stored, so every
//! replica acts on the same settings.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use premise_engine::verify_webhook;
use premise_wire::settings::{apply_patch, view};
use premise_wire::{AppSettings, ErrorCode, Rejection, WebhookFormat};
use serde_json::{Value, json};

use super::auth::Admin;
use super::body::JsonBody;
use super::reply::{reply, reply_empty};
use super::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/settings/application", get(show).patch(change).delete(reset))
}

async fn show(State(state): State<AppState>, _admin: Admin) -> Result<Response, ApiError> {
    // As stored now, not as cached: every replica answers alike, at once after a change.
    let (doc, _) = state.settings.fresh().await?;
    Ok(reply(StatusCode::OK, json!({ "settings": { "application": view(&doc) } })))
}

async fn change(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Response, ApiError> {
    // Read, change, write if nobody wrote meanwhile; otherwise again on what they wrote, so
    // concurrent PATCHes of different fields (on any replicas) all land.
    for _ in 0..MAX_ATTEMPTS {
        let (before, text) = state.settings.fresh().await?;
        let doc = apply_patch(&before, &patch)?;
        verify_cloud_webhook(&state, &AppSettings::from_document(&before), &doc).await?;
        if state.settings.replace(text.as_deref(), doc).await? {
            tracing::info!(by = %admin.username, "application settings changed");
            return Ok(reply_empty(StatusCode::OK));
        }
    }
    Err(ApiError::new(
        ErrorCode::TooManyRequests,
        "the settings are being changed by many requests at once: try again",
    ))
}

/// Tries of a PATCH whose writes keep losing to concurrent ones.
const MAX_ATTEMPTS: usize = 100;

/// When Cloud-form webhooks go to a URL they did not go to before (or with another verify
/// token), the URL gets the check Meta makes: `GET` with `hub.mode=subscribe`,
/// `hub.verify_token` and `hub.challenge`, answered with the challenge. A URL that fails it is
/// refused (400/1009), as Meta's dashboard refuses it, and the settings stay as they were.
async fn verify_cloud_webhook(
    state: &AppState,
    before: &AppSettings,
    doc: &Value,
) -> Result<(), ApiError> {
    let after = AppSettings::from_document(doc);
    let Some(url) = after.webhook_url.as_deref() else { return Ok(()) };
    let changed = before.webhook_format != WebhookFormat::Cloud
        || before.webhook_url != after.webhook_url
        || before.webhook_verify_token != after.webhook_verify_token;
    if after.webhook_format != WebhookFormat::Cloud || !changed {
        return Ok(());
    }
    let token = after.webhook_verify_token.as_deref().unwrap_or_default();
    let timeout = Duration::from_millis(state.config.callbacks.timeout_ms);
    verify_webhook(url, token, timeout).await.map_err(|why| {
        let url = crate::config::redact_url(url);
        tracing::warn!(%url, %why, "the Cloud-form webhook URL failed its verification");
        ApiError::from(Rejection::invalid("webhooks.url", why.to_string()))
    })
}

async fn reset(State(state): State<AppState>, Admin(admin): Admin) -> Result<Response, ApiError> {
    state.settings.put(Value::Object(serde_json::Map::new())).await?;
    tracing::info!(by = %admin.username, "application settings reset to defaults");
    Ok(reply_empty(StatusCode::OK))
}
