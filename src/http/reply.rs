//! Successful answers in the On-Premises envelope: the payload's keys with `meta` beside them.

use std::sync::LazyLock;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use premise_wire::{API_VERSION, Meta};
use serde::Serialize;

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

/// Just `{"meta":{...}}`, for answers that carry nothing else.
pub fn reply_empty(status: StatusCode) -> Response {
    reply(status, serde_json::Map::new())
}
