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

pub use intake::SeenCustomers;

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
    state.store.webhook_processed(id, kept.as_deref(), state.clock.now()).await?;
    Ok(unmapped.len())
}

/// How often kept webhooks left unprocessed are looked for, and how old one must be to be taken
/// (a replica processing it now finishes well within this).
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Processes the webhooks kept but never processed: a replica killed between keeping one and
/// processing it leaves it so, and Meta, if it was answered, never delivers it again. At start
/// those received before this process started; then every minute those older than a minute.
/// Processing is idempotent, so one another replica is processing too changes nothing.
pub async fn sweep(state: AppState) {
    let Some(cloud) = state.cloud.clone() else { return };
    let mut before = state.clock.now();
    loop {
        match state.store.unprocessed_webhooks(before, 100).await {
            Ok(ids) => {
                for id in ids {
                    match process_kept(&state, &cloud, id).await {
                        Ok(true) => tracing::info!(webhook = id, "processed a kept webhook"),
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(webhook = id, error = ?e, "cannot process a kept webhook yet");
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot look for unprocessed webhooks"),
        }
        state.clock.sleep(SWEEP_EVERY).await;
        before = state.clock.now().minus(SWEEP_EVERY);
    }
}

/// Processes kept webhook `id` unless it is being processed here or was processed: whether it
/// was processed now.
async fn process_kept(state: &AppState, cloud: &CloudClient, id: i64) -> Result<bool, ApiError> {
    let Some(_claim) = state.webhooks_in_progress.claim(id) else { return Ok(false) };
    if state.store.webhook_is_processed(id).await? {
        return Ok(false);
    }
    let Some(body) = state.store.journaled_body(id).await? else { return Ok(false) };
    let notification = webhook::read(&body).map_err(|why| {
        ApiError::internal(anyhow::anyhow!("a kept webhook no longer reads: {why}"))
    })?;
    process(state, cloud, id, notification).await?;
    Ok(true)
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
    let unknown = || ApiError::new(ErrorCode::ResourceNotFound, format!("no kept webhook {id}"));
    let number: i64 = id.parse().map_err(|_| unknown())?;
    let left = process_again_kept(&state, number).await?;
    Ok(reply(StatusCode::OK, serde_json::json!({ "webhooks": [{ "id": id, "unmapped": left }] })))
}

/// Processes kept webhook `id` again from its body as received: how many of its parts are still
/// not mapped. (The admin's `/process`, and the console's button.)
pub(crate) async fn process_again_kept(state: &AppState, id: i64) -> Result<usize, ApiError> {
    let cloud = cloud(state)?;
    let unknown = || ApiError::new(ErrorCode::ResourceNotFound, format!("no kept webhook {id}"));
    let body = state.store.journaled_body(id).await?.ok_or_else(unknown)?;
    // One processing at a time, as for Meta's deliveries and the sweep.
    let Some(_claim) = state.webhooks_in_progress.claim(id) else {
        return Err(being_processed());
    };
    let notification = webhook::read(&body).map_err(|why| {
        ApiError::internal(anyhow::anyhow!("a kept webhook no longer reads: {why}"))
    })?;
    process(state, cloud, id, notification).await
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
                "received_at": row.received_at.secs().to_string(),
                "processed_at": row.processed_at.map(|at| at.secs().to_string()),
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
    let journaled = state.store.journal_webhook(&digest, &body, state.clock.now()).await?;
    let id = journaled.id;
    if journaled.processed {
        Metrics::add(&state.metrics.upstream_webhooks_ok, 1);
        return Ok(StatusCode::OK.into_response());
    }
    // The same webhook being processed here already (a redelivery racing the first, or the
    // sweep): waited for, then answered by what it did.
    let deadline = state.clock.now_ms() + CONCURRENT_WAIT_MS;
    let claim = loop {
        if let Some(claim) = state.webhooks_in_progress.claim(id) {
            break claim;
        }
        if state.clock.now_ms() >= deadline {
            return Err(being_processed());
        }
        state.clock.sleep(std::time::Duration::from_millis(50)).await;
    };
    // Whoever held it before may have finished it.
    if state.store.webhook_is_processed(id).await? {
        Metrics::add(&state.metrics.upstream_webhooks_ok, 1);
        return Ok(StatusCode::OK.into_response());
    }
    process(&state, cloud, id, notification).await?;
    drop(claim);
    Metrics::add(&state.metrics.upstream_webhooks_ok, 1);
    Ok(StatusCode::OK.into_response())
}

/// 503: the webhook is being processed here now; try again later.
fn being_processed() -> ApiError {
    ApiError::new(ErrorCode::ServiceNotReady, "this webhook is being processed; try again later")
        .with_status(StatusCode::SERVICE_UNAVAILABLE)
}

/// How long a delivery waits for the same webhook's processing under way in this process.
const CONCURRENT_WAIT_MS: i64 = 10_000;

/// The journal's webhooks this process is processing now: one at a time each.
#[derive(Debug, Default)]
pub struct InProgress(std::sync::Mutex<std::collections::HashSet<i64>>);

impl InProgress {
    /// Webhook `id` for this caller alone until the claim is dropped; `None` if taken.
    fn claim(&self, id: i64) -> Option<Claim<'_>> {
        let mut taken = self.0.lock().ok()?;
        // Not `then_some`: a claim made and dropped would release the holder's.
        if taken.insert(id) { Some(Claim { of: self, id }) } else { None }
    }
}

/// A webhook being processed by its holder.
struct Claim<'a> {
    of: &'a InProgress,
    id: i64,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Ok(mut taken) = self.of.0.lock() {
            taken.remove(&self.id);
        }
    }
}
