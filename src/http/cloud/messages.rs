//! `POST /[{version}/]{phone-number-id}/messages`: sends and read receipts.
//! `{"messaging_product":"whatsapp","contacts":[{"input","wa_id"}],"messages":[{"id":"wamid...."}]}`,
//! read receipts `{"success":true}`.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use premise_engine::new_message_id;
use premise_wire::messages::{is_cloud_read, parse_cloud_read};
use premise_wire::{Message, Rejection};
use serde_json::{Value, json};

use super::super::auth::Caller;
use super::super::body::JsonBody;
use super::super::idempotency::IdempotencyKey;
use super::super::messages::{read, submit};
use super::super::{ApiError, AppState};
use super::{cloud_error, is_graph_version};

pub(super) async fn versioned(
    State(state): State<AppState>,
    Path((version, _phone_number_id)): Path<(String, String)>,
    uri: Uri,
    caller: Result<Caller, ApiError>,
    key: Option<Extension<IdempotencyKey>>,
    body: Result<JsonBody<Value>, ApiError>,
) -> Response {
    if !is_graph_version(&version) {
        // Not a Cloud path after all: answer as the rest of the API does.
        return super::super::not_found_path(uri.path()).into_response();
    }
    handle(&state, caller, key.as_deref(), body).await.unwrap_or_else(|e| cloud_error(&e))
}

pub(super) async fn versionless(
    State(state): State<AppState>,
    Path(_phone_number_id): Path<String>,
    caller: Result<Caller, ApiError>,
    key: Option<Extension<IdempotencyKey>>,
    body: Result<JsonBody<Value>, ApiError>,
) -> Response {
    handle(&state, caller, key.as_deref(), body).await.unwrap_or_else(|e| cloud_error(&e))
}

async fn handle(
    state: &AppState,
    caller: Result<Caller, ApiError>,
    key: Option<&IdempotencyKey>,
    body: Result<JsonBody<Value>, ApiError>,
) -> Result<Response, ApiError> {
    let caller = caller?;
    let JsonBody(body) = body?;
    if is_cloud_read(&body) {
        let receipt = parse_cloud_read(&body)?;
        read(state, &receipt.message_id, receipt.typing_indicator).await?;
        return Ok((StatusCode::OK, Json(json!({ "success": true }))).into_response());
    }
    if body.get("messaging_product").is_none_or(Value::is_null) {
        return Err(Rejection::missing("messaging_product").into());
    }
    let message = Message::parse(&body)?;
    let id = format!("wamid.{}", new_message_id());
    let input = ["to", "recipient"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str))
        .unwrap_or(message.to.as_str());
    // Sent by business-scoped user id, Meta answers the customer's `user_id` rather than a
    // `wa_id` (their number may be hidden).
    let contact = match message.to.user_id() {
        Some(user) => json!({ "input": input, "user_id": user.as_str() }),
        None => json!({ "input": input, "wa_id": message.to.as_str() }),
    };
    let answer = json!({
        "messaging_product": "whatsapp",
        "contacts": [contact],
        "messages": [{ "id": id }],
    });
    let answer = serde_json::to_vec(&answer).expect("a JSON value serialises");
    submit(state, &id, &message, caller.credential(), (StatusCode::OK, answer), key).await
}
