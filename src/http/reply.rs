//! Successful answers in the On-Premises envelope: the payload's keys with `meta` beside them.

use std::sync::LazyLock;

use axum::Json;
use axum::http::header::HOST;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use premise_wire::{API_VERSION, Meta};
use serde::Serialize;

use super::AppState;

static META: LazyLock<Meta> = LazyLock::new(|| Meta::stable(API_VERSION));

#[derive(Serialize)]
struct Envelope<'a, T> {
    #[serde(flatten)]
    payload: T,
    meta: &'a Meta,
}

/// `payload` (a JSON object) plus `"meta"`, with `status`.
pub fn reply<T: Serialize>(status: StatusCode, payload: T) -> Response {
    (status, Json(Envelope { payload, meta: &META })).into_response()
}

/// `payload` (a JSON object) plus `"meta"`, as the bytes [`reply`] would answer.
pub fn envelope<T: Serialize>(payload: T) -> Vec<u8> {
    serde_json::to_vec(&Envelope { payload, meta: &META }).expect("a JSON object serialises")
}

/// Just `{"meta":{...}}`, for answers that carry nothing else.
pub fn reply_empty(status: StatusCode) -> Response {
    reply(status, serde_json::Map::new())
}

/// The URL of `path` on this server as the client reached it: its `Host`, the scheme a trusted
/// proxy reports (or this listener's) and the configured path prefix; for links the client
/// follows with its own token.
pub fn url_as_reached(state: &AppState, headers: &HeaderMap, path: &str) -> String {
    let server = &state.config.server;
    let forwarded = server
        .trust_forwarded_for
        .then(|| headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()))
        .flatten()
        .filter(|p| *p == "http" || *p == "https");
    let scheme = forwarded.unwrap_or(if server.tls_cert.is_empty() { "http" } else { "https" });
    let host = headers.get(HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    format!("{scheme}://{host}{}{path}", server.path_prefix)
}
