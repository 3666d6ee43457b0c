//! `Idempotency-Key` on the message routes: a `POST` repeated with the same key and the same
//! body gets the first answer again (same status, same body, so the same message id) instead of
//! sending twice; the same key with another body is refused with 409 (1004, "Resource already
//! exists": the key names a request that exists and is not this one).
//!
//! A key is bound to its answer by the store, never held by a request:
//! - a request that sends a message keeps its answer with the message, in the statement that
//!   stores it ([`IdempotencyKey`] travels to the handler, which builds the answer before the
//!   commit). A retry finds the message and its answer or neither, whatever happened to the
//!   replica that took the first attempt (killed right after the commit, frozen, cut off); and
//!   of two attempts in flight at once, on any replicas, the store lets one commit and the
//!   other, finding the key taken, answers the first's answer. No attempt waits for another
//!   beyond the moment its own commit takes, and no holder can complete a key it lost;
//! - other answers worth replaying (the 4xx that depend only on the request) are kept after the
//!   handler, if the key is still free; answers that depend on the moment (401, 403, 408, 429,
//!   5xx such as 503 "System overloaded") are not kept, so the retry they invite can succeed.
//!
//! Keys live `server.idempotency_ttl_secs` and are scoped by method and path, not by user:
//! every user of a server acts for the same WhatsApp business number.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use premise_base::UnixMs;
use premise_store::KeptAnswer;
use premise_wire::{ErrorCode, Rejection};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState, body};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on a replayed answer.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
const MAX_KEY_CHARS: usize = 255;
/// The largest answer kept (the answers kept are small JSON documents).
const MAX_KEPT_BYTES: usize = 64 * 1024;

/// A request's key, as the handler behind the guard finds it among the request's extensions:
/// what it needs to keep its answer with the message it stores.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// The header's value, as the client sent it.
    name: String,
    /// The key as stored: method, path and the header's value.
    scoped: String,
    fingerprint: String,
    expires_at: UnixMs,
}

impl IdempotencyKey {
    /// The answer `status` with `body` (JSON), kept under this key.
    pub fn answer(&self, status: StatusCode, body: Vec<u8>) -> KeptAnswer {
        KeptAnswer {
            key: self.scoped.clone(),
            fingerprint: self.fingerprint.clone(),
            status: status.as_u16(),
            body,
            expires_at: self.expires_at,
        }
    }

    /// The answer the key holds now: the first answer replayed when this request's body is the
    /// same, 409 when it is not; `None` when the key holds no answer.
    pub async fn kept(&self, state: &AppState) -> Result<Option<Response>, ApiError> {
        let kept = state.store.kept_answer(&self.scoped, state.clock.now()).await?;
        Ok(kept.map(|kept| self.replay(kept)))
    }

    fn replay(&self, kept: KeptAnswer) -> Response {
        if kept.fingerprint != self.fingerprint {
            return ApiError::new(
                ErrorCode::ResourceAlreadyExists,
                format!(
                    "Idempotency-Key '{}' was already used with a different request body",
                    self.name
                ),
            )
            .into_response();
        }
        let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = json_answer(status, kept.body);
        response.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
        response
    }
}

/// A JSON answer from its bytes.
pub fn json_answer(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, Body::from(body)).into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The middleware; see the module documentation.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(raw) = request.headers().get(IDEMPOTENCY_KEY) else {
        return next.run(request).await;
    };
    let name = match parse_key(raw) {
        Ok(key) => key,
        Err(rejection) => return ApiError::from(rejection).into_response(),
    };
    let (parts, raw_body) = request.into_parts();
    let bytes = match body::read(Request::from_parts(parts.clone(), raw_body), &state).await {
        Ok(bytes) => bytes,
        Err(e) => return e.into_response(),
    };
    let ttl = i64::try_from(state.config.server.idempotency_ttl_secs).unwrap_or(i64::MAX);
    let key = IdempotencyKey {
        scoped: format!("{} {} {name}", parts.method, parts.uri.path()),
        name,
        fingerprint: Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect(),
        // `now` is rounded down to the second: one more so a key lives at least `ttl`.
        expires_at: UnixMs::from_secs(state.clock.now_secs().saturating_add(ttl).saturating_add(1)),
    };
    match key.kept(&state).await {
        Err(e) => return e.into_response(),
        Ok(Some(replayed)) => return replayed,
        Ok(None) => {}
    }
    let mut request = Request::from_parts(parts, Body::from(bytes));
    request.extensions_mut().insert(key.clone());
    // The handler runs in a task of its own, so a client that hangs up does not cancel it
    // half-way (between the commit and the answer, the answer would still be right, but the
    // task also keeps the answers of refused requests).
    let task = tokio::spawn(async move {
        let response = next.run(request).await;
        settle(&state, &key, response).await
    });
    task.await.unwrap_or_else(|e| {
        ApiError::internal(anyhow::anyhow!("a request with an idempotency key failed: {e}"))
            .into_response()
    })
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

/// Keeps a refusal worth replaying under the key, if it is still free (a message's answer was
/// kept with the message; a replayed answer is kept already); hands the answer on, or the one
/// the key holds if another request kept one first.
async fn settle(state: &AppState, key: &IdempotencyKey, response: Response) -> Response {
    if response.status().is_success()
        || response.headers().contains_key(REPLAYED)
        || !worth_replaying(response.status())
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_KEPT_BYTES).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return ApiError::internal(anyhow::anyhow!("cannot read an answer to keep: {e}"))
                .into_response();
        }
    };
    let answer = key.answer(parts.status, bytes.to_vec());
    match state.store.keep_answer(&answer, state.clock.now()).await {
        Ok(true) => {}
        Ok(false) => match key.kept(state).await {
            Ok(Some(kept)) => return kept,
            Ok(None) => {}
            Err(e) => return e.into_response(),
        },
        Err(e) => {
            // The refusal stands; a retry is judged again.
            tracing::warn!(error = format!("{e:#}"), "cannot keep an idempotent answer");
        }
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
