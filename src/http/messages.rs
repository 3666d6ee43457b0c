//! `POST /v1/messages`: validate, commit to the queue, answer with the id.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use premise_engine::{EnqueueError, new_message_id};
use premise_store::NewMessage;
use premise_upstream::now_ms;
use premise_wire::{ErrorCode, Message};
use serde_json::{Value, json};

use super::auth::Caller;
use super::body::JsonBody;
use super::reply::reply;
use super::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/messages", post(send))
}

/// 201 `{"messages":[{"id"}]}`, only once the message is committed (promise 1).
async fn send(
    State(state): State<AppState>,
    _caller: Caller,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let message = Message::parse(&body)?;
    let id = new_message_id();
    let queued = NewMessage {
        id: id.clone(),
        recipient: message.to.as_str().to_owned(),
        recipient_crc: message.to.crc32(),
        payload: serde_json::to_string(&message).map_err(ApiError::internal)?,
        accepted_at_ms: now_ms(),
    };
    state.enqueuer.submit(queued).await.map_err(|e| match e {
        EnqueueError::Overloaded(why) => ApiError::new(ErrorCode::SystemOverloaded, why),
        EnqueueError::Failed(cause) => ApiError::internal(cause),
    })?;
    Ok(reply(StatusCode::CREATED, json!({ "messages": [{ "id": id }] })))
}
