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
use sha2::{Digest, Sha256};

use super::auth::Admin;
use super::reply::reply;
use super::{ApiError, AppState};

/// Where Meta sends the Cloud API's webhooks.
pub const PATH: &str = "/cloud/webhook";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, get(verify).post(receive))
        .route("/v1/cloud/webhooks/unmapped", get(unmapped))
        .route("/v1/cloud/webhooks/{id}/process", axum::routing::post(process_again))
}

/// Records what a journaled webhook carries and marks it processed, with the parts kept
/// without being mapped (counted and logged).
async fn process(
    state: &AppState,
    cloud: &CloudClient,
    id: i64,
    notification: webhook::Notification,
) -> Result<usize, ApiError> {
    let mut unmapped = intake::record(state, cloud, &notification).await?;
    unmapped.splice(0..0, notification.unmapped);
    let kept = (!unmapped.is_empty()).then(|| {
        Metrics::add(&state.metrics.upstream_webhook_parts_unmapped, unmapped.len() as u64);
        tracing::warn!(
            webhook = id,
            parts = unmapped.len(),
            first = %unmapped[0].why,
            "parts of a Cloud webhook were not mapped; kept (GET /v1/cloud/webhooks/unmapped)"
        );
        let parts: Vec<serde_json::Value> =
            unmapped.iter().map(|u| serde_json::json!({ "why": u.why, "part": u.part })).collect();
        serde_json::Value::Array(parts).to_string()
    });
    state.store.webhook_processed(id, kept.as_deref(), state.clock.now_ms()).await?;
    Ok(unmapped.len())
}

/// `POST /v1/cloud/webhooks/{id}/process` (admin): processes a kept webhook again from its body
/// as received, after an upgrade that maps more: what is mapped now is recorded (what was
/// recorded before is not recorded twice), `{"webhooks":[{"id","unmapped"}]}` says how many
/// parts are still not mapped.
async fn process_again(
    State(state): State<AppState>,
    _admin: Admin,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let cloud = cloud(&state)?;
    let unknown = || ApiError::new(ErrorCode::ResourceNotFound, format!("no kept webhook {id}"));
    let number: i64 = id.parse().map_err(|_| unknown())?;
    let body = state.store.journaled_body(number).await?.ok_or_else(unknown)?;
    let notification = webhook::read(&body).map_err(|why| {
        ApiError::internal(anyhow::anyhow!("a kept webhook no longer reads: {why}"))
    })?;
    let left = process(&state, cloud, number, notification).await?;
    Ok(reply(StatusCode::OK, serde_json::json!({ "webhooks": [{ "id": id, "unmapped": left }] })))
}

/// `GET /v1/cloud/webhooks/unmapped` (admin): the Cloud webhooks with parts Premise kept
/// without mapping them, newest first (at most 100): `{"webhooks":[{"id","received_at",
/// "processed_at","parts":[{"why","part"}]}]}`, each part as Meta sent it.
async fn unmapped(State(state): State<AppState>, _admin: Admin) -> Result<Response, ApiError> {
    let rows = state.store.unmapped_webhooks(100).await?;
    let webhooks: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|row| {
            let parts: serde_json::Value =
                serde_json::from_str(&row.unmapped).unwrap_or(serde_json::Value::Null);
            serde_json::json!({
                "id": row.id.to_string(),
                "received_at": (row.received_at_ms / 1000).to_string(),
                "processed_at": row.processed_at_ms.map(|ms| (ms / 1000).to_string()),
                "parts": parts,
            })
        })
        .collect();
    Ok(reply(StatusCode::OK, serde_json::json!({ "webhooks": webhooks })))
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
            tracing::warn!(%why, "refused a signed webhook whose body is not JSON");
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("not a WhatsApp Business Account webhook: {why}"),
            ));
        }
    };
    // Kept as received before anything else, so nothing of it is lost whatever follows; a
    // redelivery of one already processed is answered at once.
    let digest: String = Sha256::digest(&body).iter().map(|b| format!("{b:02x}")).collect();
    let received = state.clock.now_ms();
    let (id, processed) = state.store.journal_webhook(&digest, &body, received).await?;
    if processed {
        Metrics::add(&state.metrics.upstream_webhooks_ok, 1);
        return Ok(StatusCode::OK.into_response());
    }
    process(&state, cloud, id, notification).await?;
    Metrics::add(&state.metrics.upstream_webhooks_ok, 1);
    Ok(StatusCode::OK.into_response())
}
