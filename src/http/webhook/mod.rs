//! `/cloud/webhook` (under `server.path_prefix`, no Premise token): where Meta delivers the
//! Cloud API's webhooks, with `upstream.kind = "cloud"`. Elsewhere it answers 404.
//!
//! - `GET` is the Meta app's set-up check: `hub.mode=subscribe` with the configured
//!   `hub.verify_token` is answered with `hub.challenge` as plain text; anything else 403.
//! - `POST` must be signed: `X-Hub-Signature-256` is the HMAC-SHA256 of the raw body with
//!   `cloud.app_secret`, compared in constant time; missing or wrong, 401 and nothing is
//!   recorded. A signed webhook is answered 200 only once everything it carries is durably
//!   recorded ([`intake`]), so a crash before that leaves it to Meta's redelivery; recording
//!   the same webhook twice changes nothing.

mod intake;

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use premise_engine::Metrics;
use premise_upstream::cloud::{CloudClient, webhook};
use premise_wire::ErrorCode;

use super::{ApiError, AppState};

/// Where Meta sends the Cloud API's webhooks.
pub const PATH: &str = "/cloud/webhook";

pub fn routes() -> Router<AppState> {
    Router::new().route(PATH, get(verify).post(receive))
}

fn cloud(state: &AppState) -> Result<&CloudClient, ApiError> {
    state.cloud.as_deref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::ResourceNotFound,
            "the Cloud API webhook exists only with upstream.kind = cloud",
        )
    })
}

/// The set-up check: the challenge back, as plain text, when the verify token is right.
async fn verify(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let cloud = cloud(&state)?;
    let expected = cloud.settings().verify_token.expose().as_bytes();
    let given = query.get("hub.verify_token").map_or(&[][..], |t| t.as_bytes());
    let subscribe = query.get("hub.mode").is_some_and(|m| m == "subscribe");
    let challenge = query.get("hub.challenge");
    match challenge {
        Some(challenge) if subscribe && !expected.is_empty() && same(expected, given) => {
            tracing::info!("the Meta app's webhook set-up check passed");
            Ok(([(CONTENT_TYPE, "text/plain; charset=utf-8")], challenge.clone()).into_response())
        }
        _ => {
            tracing::warn!(
                "a webhook set-up check was refused (wrong hub.verify_token or hub.mode)"
            );
            Err(ApiError::new(
                ErrorCode::AccessDenied,
                "hub.mode must be subscribe and hub.verify_token must be cloud.verify_token",
            )
            .with_status(StatusCode::FORBIDDEN))
        }
    }
}

/// Constant-time equality (the lengths are not secret).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    // Too large or cut off: refused in the error shape of every other answer (413 for size).
    let body = body.map_err(|rejection| {
        let why = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "request body is larger than the server accepts".to_owned()
        } else {
            format!("cannot read the webhook: {rejection}")
        };
        ApiError::new(ErrorCode::InvalidRequest, why).with_status(rejection.status())
    })?;
    let cloud = cloud(&state)?;
    let signature = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
    let secret = cloud.settings().app_secret.expose().as_bytes();
    if !webhook::signed(secret, &body, signature) {
        Metrics::add(&state.metrics.upstream_webhooks_unsigned, 1);
        tracing::warn!(
            signed = signature.is_some(),
            "refused a webhook whose X-Hub-Signature-256 is missing or wrong (is cloud.app_secret the Meta app's secret?)"
        );
        return Err(ApiError::new(
            ErrorCode::AccessDenied,
            "X-Hub-Signature-256 is missing or is not the body's signature",
        )
        .with_status(StatusCode::UNAUTHORIZED));
    }
    let notification = match webhook::read(&body) {
        Ok(notification) => notification,
        Err(why) => {
            Metrics::add(&state.metrics.upstream_webhooks_invalid, 1);
            tracing::warn!(%why, "refused a signed webhook that is not a WhatsApp webhook");
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("not a WhatsApp Business Account webhook: {why}"),
            ));
        }
    };
    intake::record(&state, cloud, &notification).await?;
    Metrics::add(&state.metrics.upstream_webhooks_ok, 1);
    Ok(StatusCode::OK.into_response())
}
