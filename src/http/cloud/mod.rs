//! The Cloud API's dialect, for integrations written against the Cloud API: point a Cloud API
//! client's Graph base URL at Premise and its calls work, with the path's version
//! (`/v23.0/...`) or without it (`/{phone-number-id}/messages`), as the Graph API takes both.
//! Same bearer tokens, validation, queue and media store as the On-Premises routes; answers and
//! errors in Cloud's shapes (`{"error":{"message","type","code","error_data":{"details"},
//! "fbtrace_id"}}` with Cloud's codes, `docs/onprem-api.md` section 12.1). The phone number id is
//! not checked: a Premise serves one number.
//!
//! - [`messages`]: sends, read receipts.
//! - [`media`]: multipart uploads, lookups (a URL on Premise that downloads with the same
//!   token), deletion.

mod media;
mod messages;

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use premise_wire::ErrorCode;
use serde_json::json;

use super::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/{version}/{phone_number_id}/messages", post(messages::versioned))
        .route("/{phone_number_id}/messages", post(messages::versionless))
}

/// Media routes: not behind `Idempotency-Key` handling, and with the upload size limit.
pub fn media_routes() -> Router<AppState> {
    Router::new()
        .route("/{version}/{phone_number_id}/media", post(media::upload_versioned))
        .route("/{phone_number_id}/media", post(media::upload_versionless))
        .route(
            "/{version}/{media_id}",
            get(media::lookup_versioned).delete(media::delete_versioned),
        )
        .route("/{media_id}", get(media::lookup_versionless).delete(media::delete_versionless))
}

/// `v17.0`, `v19.0`...: Graph API versions always have a minor part.
pub(super) fn is_graph_version(version: &str) -> bool {
    let Some((major, minor)) = version.strip_prefix('v').and_then(|v| v.split_once('.')) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(major) && digits(minor)
}

/// `{"error":{"message","type","code","error_data":{"messaging_product","details"},"fbtrace_id"}}`
/// with the HTTP status On-Premises used for the same error. Bad credentials are Cloud's 190.
pub(super) fn cloud_error(e: &ApiError) -> Response {
    e.log();
    let (code, title) = if e.status() == StatusCode::UNAUTHORIZED {
        (190, "Invalid OAuth access token")
    } else {
        (e.code().cloud_code(), cloud_title(e.code()))
    };
    let body = json!({
        "error": {
            "message": format!("(#{code}) {title}"),
            "type": "OAuthException",
            "code": code,
            "error_data": { "messaging_product": "whatsapp", "details": e.details() },
            "fbtrace_id": fbtrace_id(),
        }
    });
    (e.status(), Json(body)).into_response()
}

/// Cloud's titles where they differ from On-Premises'.
fn cloud_title(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::ReceiverIncapable => "Message undeliverable",
        ErrorCode::InvalidRequest => "Invalid parameter",
        ErrorCode::GenericError | ErrorCode::InternalError | ErrorCode::DatabaseError => {
            "Something went wrong"
        }
        ErrorCode::SystemOverloaded | ErrorCode::ServiceNotReady => "Service unavailable",
        ErrorCode::TooManyRequests => "Rate limit hit",
        other => other.title(),
    }
}

/// A Graph API error of its own (`code`, `error_subcode`), not the translation of an
/// On-Premises one: an unknown object or path.
pub(super) fn graph_error(
    status: StatusCode,
    code: u32,
    subcode: Option<u32>,
    kind: &str,
    message: &str,
) -> Response {
    let mut error = json!({
        "message": format!("(#{code}) {message}"),
        "type": kind,
        "code": code,
        "fbtrace_id": fbtrace_id(),
    });
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    (status, Json(json!({ "error": error }))).into_response()
}

/// The Graph API's answer to a path it does not know.
pub(super) fn unknown_path(path: &str) -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        2500,
        None,
        "OAuthException",
        &format!("Unknown path components: {path}"),
    )
}

/// An opaque per-error id, shaped like Meta's.
fn fbtrace_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("A{}", &id[..22])
}

#[cfg(test)]
mod tests {
    use super::is_graph_version;

    #[test]
    fn graph_versions() {
        assert!(is_graph_version("v17.0") && is_graph_version("v21.10"));
        for not in ["v1", "v17", "17.0", "v.0", "v17.", "vx.0", "users"] {
            assert!(!is_graph_version(not), "{not}");
        }
    }
}
