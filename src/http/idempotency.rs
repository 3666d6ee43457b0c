//! `Idempotency-Key` on the message routes: a `POST` repeated with the same key and the same
//! body gets the first answer again (same status, same body, so the same message id) instead of
//! sending twice; the same key with another body is refused with 409 (1004, "Resource already
//! exists": the key names a request that exists and is not this one).
//!
//! A middleware, so the handlers behind it know nothing of it:
//! 1. the key is reserved in the store (insert-if-absent, so on every replica exactly one
//!    request holds it) together with the SHA-256 of the body;
//! 2. the handler runs in a task of its own, so a client that hangs up cannot cancel it between
//!    "message committed" and "answer stored" (which would let its retry send again);
//! 3. the answer is stored with the key, which is kept for `server.idempotency_ttl_secs`.
//!
//! A duplicate that arrives while the first request is still running waits for its answer
//! (polling the store; the first is normally done in milliseconds) and gets that answer, so a
//! client retrying on a timeout never sees an error for a request that succeeded. If the first
//! takes longer than [`WAIT`], the duplicate gets 409 saying the request is in progress. A
//! holder that died keeps the key for at most [`LOCK_SECS`]; then a request with the same body
//! takes it over.
//!
//! Answers worth replaying are kept: 2xx and the 4xx that depend only on the request. Answers
//! that depend on the moment (401, 403, 429, 5xx such as 503 "System overloaded") free the
//! key, so the retry they invite can succeed. Keys are scoped by method and path, not by user:
//! every user of a server acts for the same WhatsApp business number.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use premise_store::{Reservation, Store, StoredResponse};
use premise_upstream::Clock;
use premise_wire::{ErrorCode, Rejection};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState, body};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on a replayed answer.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
const MAX_KEY_CHARS: usize = 255;
/// How long a request holds its key before it is presumed dead.
const LOCK_SECS: i64 = 60;
/// How long a duplicate waits for the first request's answer.
const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(25);

/// The middleware; see the module documentation.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(raw) = request.headers().get(IDEMPOTENCY_KEY) else {
        return next.run(request).await;
    };
    let key = match parse_key(raw) {
        Ok(key) => key,
        Err(rejection) => return ApiError::from(rejection).into_response(),
    };
    let (parts, raw_body) = request.into_parts();
    let scope = format!("{} {} {key}", parts.method, parts.uri.path());
    let bytes = match body::read(Request::from_parts(parts.clone(), raw_body), &state).await {
        Ok(bytes) => bytes,
        Err(e) => return e.into_response(),
    };
    let fingerprint: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    let ttl = i64::try_from(state.config.server.idempotency_ttl_secs).unwrap_or(i64::MAX);

    let store = state.store.clone();
    let deadline = Instant::now() + WAIT;
    loop {
        let now = state.clock.now_secs();
        let reservation = store
            .reserve_idempotency_key(
                &scope,
                &fingerprint,
                now,
                now + LOCK_SECS,
                // `now` is rounded down to the second: one more so a key lives at least `ttl`.
                now.saturating_add(ttl).saturating_add(1),
            )
            .await;
        match reservation {
            Err(e) => return ApiError::from(e).into_response(),
            Ok(Reservation::Reserved) => break,
            Ok(Reservation::Done(stored)) => return replay(stored),
            Ok(Reservation::Conflict) => {
                return ApiError::new(
                    ErrorCode::ResourceAlreadyExists,
                    format!(
                        "Idempotency-Key '{key}' was already used with a different request body"
                    ),
                )
                .into_response();
            }
            Ok(Reservation::InProgress) if Instant::now() >= deadline => {
                return ApiError::new(
                    ErrorCode::ResourceAlreadyExists,
                    format!(
                        "A request with Idempotency-Key '{key}' is still in progress; retry later"
                    ),
                )
                .into_response();
            }
            Ok(Reservation::InProgress) => tokio::time::sleep(POLL).await,
        }
    }

    let request = Request::from_parts(parts, Body::from(bytes));
    let task = {
        let (store, scope, clock) = (store.clone(), scope.clone(), state.clock.clone());
        tokio::spawn(async move { settle(&*store, &scope, next.run(request).await, &clock).await })
    };
    match task.await {
        Ok(response) => response,
        Err(e) => {
            release(&*store, &scope).await;
            ApiError::internal(anyhow::anyhow!("a request holding an idempotency key failed: {e}"))
                .into_response()
        }
    }
}

/// 1 to 255 visible ASCII characters.
fn parse_key(raw: &HeaderValue) -> Result<String, Rejection> {
    let key = raw.to_str().unwrap_or_default().trim();
    if key.is_empty() || key.len() > MAX_KEY_CHARS || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Rejection::invalid(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY_CHARS} visible ASCII characters"),
        ));
    }
    Ok(key.to_owned())
}

/// Stores the answer (or frees the key) and hands the answer on.
async fn settle(store: &dyn Store, scope: &str, response: Response, clock: &Clock) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            release(store, scope).await;
            return ApiError::internal(anyhow::anyhow!("cannot read an answer to keep: {e}"))
                .into_response();
        }
    };
    if worth_replaying(parts.status) {
        let stored = StoredResponse { status: parts.status.as_u16(), body: bytes.to_vec() };
        if let Err(e) = store.complete_idempotency_key(scope, &stored, clock.now_secs()).await {
            // The request itself succeeded; say so. A retry within the lock time waits and is
            // then refused as in progress rather than sent twice.
            tracing::error!(error = format!("{e:#}"), "cannot store an idempotent answer");
        }
    } else {
        release(store, scope).await;
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn worth_replaying(status: StatusCode) -> bool {
    let transient = [
        StatusCode::UNAUTHORIZED,
        StatusCode::FORBIDDEN,
        StatusCode::REQUEST_TIMEOUT,
        StatusCode::TOO_MANY_REQUESTS,
    ];
    (status.is_success() || status.is_client_error()) && !transient.contains(&status)
}

async fn release(store: &dyn Store, scope: &str) {
    if let Err(e) = store.release_idempotency_key(scope).await {
        tracing::warn!(
            error = format!("{e:#}"),
            "cannot free an idempotency key; it frees itself when its lock runs out"
        );
    }
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Body::from(stored.body)).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(parse_key(&HeaderValue::from_static(" abc-123 ")).unwrap(), "abc-123");
        assert!(parse_key(&HeaderValue::from_static("")).is_err());
        assert!(parse_key(&HeaderValue::from_static("a b")).is_err());
        assert!(parse_key(&HeaderValue::from_str(&"k".repeat(256)).unwrap()).is_err());
    }

    #[test]
    fn which_answers_are_kept() {
        assert!(worth_replaying(StatusCode::CREATED));
        assert!(worth_replaying(StatusCode::BAD_REQUEST));
        assert!(!worth_replaying(StatusCode::UNAUTHORIZED));
        assert!(!worth_replaying(StatusCode::TOO_MANY_REQUESTS));
        assert!(!worth_replaying(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!worth_replaying(StatusCode::INTERNAL_SERVER_ERROR));
    }
}
