//! The Cloud API's send endpoint, `POST /{version}/{phone-number-id}/messages` (e.g.
//! `/v17.0/1234567890/messages`), for integrations already moved to the Cloud dialect. Same
//! bearer auth, same validation and the same queue as `/v1/messages`; Cloud-shaped answers:
//! `{"messaging_product":"whatsapp","contacts":[...],"messages":[{"id":"wamid...."}]}`, read
//! receipts `{"success":true}`, and errors in Cloud's envelope with the Cloud code of the
//! On-Premises error (`onprem-api.md` section 12.1). The phone-number id is not checked: a
//! Premise serves one number.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use premise_engine::new_message_id;
use premise_wire::messages::{is_cloud_read, parse_cloud_read};
use premise_wire::{ErrorCode, Message, Rejection};
use serde_json::{Value, json};

use super::auth::Caller;
use super::body::JsonBody;
use super::messages::{read, submit};
use super::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/{version}/{phone_number_id}/messages", post(messages))
}

async fn messages(
    State(state): State<AppState>,
    Path((version, _phone_number_id)): Path<(String, String)>,
    uri: Uri,
    caller: Result<Caller, ApiError>,
    body: Result<JsonBody<Value>, ApiError>,
) -> Response {
    if !is_graph_version(&version) {
        // Not a Cloud path after all: answer as the rest of the API does.
        return super::not_found_path(uri.path()).into_response();
    }
    match handle(&state, caller, body).await {
        Ok(answer) => (StatusCode::OK, Json(answer)).into_response(),
        Err(e) => cloud_error(&e),
    }
}

async fn handle(
    state: &AppState,
    caller: Result<Caller, ApiError>,
    body: Result<JsonBody<Value>, ApiError>,
) -> Result<Value, ApiError> {
    caller?;
    let JsonBody(body) = body?;
    if is_cloud_read(&body) {
        let id = parse_cloud_read(&body)?;
        read(state, &id).await?;
        return Ok(json!({ "success": true }));
    }
    if body.get("messaging_product").is_none_or(Value::is_null) {
        return Err(Rejection::missing("messaging_product").into());
    }
    let message = Message::parse(&body)?;
    let id = format!("wamid.{}", new_message_id());
    submit(state, &id, &message).await?;
    let input = body.get("to").and_then(Value::as_str).unwrap_or(message.to.as_str());
    Ok(json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": input, "wa_id": message.to.as_str() }],
        "messages": [{ "id": id }],
    }))
}

/// `v17.0`, `v19.0`...: Graph API versions always have a minor part.
fn is_graph_version(version: &str) -> bool {
    let Some((major, minor)) = version.strip_prefix('v').and_then(|v| v.split_once('.')) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(major) && digits(minor)
}

/// `{"error":{"message","type","code","error_data":{"messaging_product","details"},"fbtrace_id"}}`
/// with the HTTP status On-Premises used for the same error. Bad credentials are Cloud's 190.
fn cloud_error(e: &ApiError) -> Response {
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
