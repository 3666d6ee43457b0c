//! `POST /v1/messages`: validate, commit to the queue, answer with the id; and
//! `PUT /v1/messages/{id}`: mark an inbound message read.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{post, put};
use axum::{Extension, Router};
use premise_engine::{EnqueueError, new_message_id};
use premise_store::{Credential, NewMessage, Routed};
use premise_wire::messages::parse_read;
use premise_wire::messages::template::Template;
use premise_wire::{Content, ErrorCode, Message};
use serde_json::{Value, json};

use super::auth::{Caller, Sender};
use super::body::JsonBody;
use super::idempotency::{IdempotencyKey, json_answer};
use super::reply::{envelope, reply_empty};
use super::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/messages", post(send)).route("/v1/messages/{id}", put(mark_read))
}

/// 201 `{"messages":[{"id"}]}`, only once the message is committed (promise 1). The token is
/// checked by the statement that stores the message, and before that only if the store or
/// the upstream is asked anything else for the request (a media id, a template); any other
/// answer than 201 is given after a check, so a token no longer valid gets 401 whatever else
/// is wrong, as if checked on arrival.
async fn send(
    State(state): State<AppState>,
    sender: Sender,
    key: Option<Extension<IdempotencyKey>>,
    body: Result<JsonBody<Value>, ApiError>,
) -> Result<Response, ApiError> {
    let stored = async {
        let JsonBody(body) = body?;
        let message = Message::parse(&body)?;
        if reads_before_storing(&message) {
            sender.check(&state).await?;
        }
        let id = new_message_id();
        let answer = (StatusCode::CREATED, envelope(json!({ "messages": [{ "id": id }] })));
        submit(&state, &id, &message, sender.credential(), answer, key.as_deref()).await
    };
    match stored.await {
        Ok(answer) => Ok(answer),
        Err(refusal) => {
            sender.check(&state).await?;
            Err(refusal)
        }
    }
}

/// Whether [`submit`] reads the store or asks the upstream about the message before storing it.
fn reads_before_storing(message: &Message) -> bool {
    message.media_id().is_some() || matches!(message.content, Content::Template { .. })
}

/// Commits a validated message to the queue under `id`, if `credential` still holds when it
/// is stored (401 otherwise); returns `answer` (a status and its JSON body) once it is durable.
/// With an idempotency key, the answer is kept with the message by the same commit, and a key
/// taken already gets the answer it holds instead (nothing is stored). Both dialects' send
/// endpoints end here.
pub(super) async fn submit(
    state: &AppState,
    id: &str,
    message: &Message,
    credential: Credential,
    (status, answer): (StatusCode, Vec<u8>),
    key: Option<&IdempotencyKey>,
) -> Result<Response, ApiError> {
    if let Some(media) = message.media_id()
        && !state.store.media_exists(media).await?
    {
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("media id '{media}' is not an uploaded media (POST /v1/media first)"),
        ));
    }
    if let Content::Template { template } = &message.content {
        check_template(state, template).await?;
    }
    let payload = message.to_stored();
    let queued = NewMessage {
        id: id.to_owned(),
        recipient: Routed::from(&message.to),
        payload,
        accepted_at: state.clock.now(),
        callback_data: message.callback_data().map(str::to_owned),
        credential: Some(credential),
        idempotency: key.map(|key| key.answer(status, answer.clone())),
    };
    match (state.enqueuer.submit(queued).await, key) {
        (Ok(()), _) => Ok(json_answer(status, answer)),
        // Not stored because the key was taken: its answer is replayed.
        (Err(EnqueueError::Refused), Some(key)) => {
            key.kept(state).await?.ok_or_else(ApiError::unauthorized)
        }
        (Err(error), _) => Err(error.into()),
    }
}

/// The upstream's verdict on a template, before acceptance: On-Premises hydrated templates from
/// its language packs when the send was requested, so template errors (2000, 2001, 2005, 2012)
/// answer the POST (`docs/onprem-api.md` section 10.1).
async fn check_template(state: &AppState, template: &Template) -> Result<(), ApiError> {
    state.upstream.check_template(template).await.map_err(|error| {
        let code = ErrorCode::from_code(error.code).unwrap_or(ErrorCode::GenericError);
        ApiError::new(code, error.details.unwrap_or(error.title))
    })
}

/// `{"status":"read"}` → 200 `{"meta":...}`; an id that is not an inbound message → 404/1006.
async fn mark_read(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let typing = parse_read(&body)?;
    read(&state, &id, typing).await?;
    Ok(reply_empty(StatusCode::OK))
}

/// Marks the inbound message `id` read, and tells the upstream (the Cloud API sends the
/// customer a read receipt); 404/1006 if there is no such message. If the upstream cannot be
/// told, the answer is an error (500/1014) so the integration tries again; marking twice is
/// harmless. `typing`: show the customer a typing indicator too (the Cloud API passes it on).
pub(super) async fn read(state: &AppState, id: &str, typing: bool) -> Result<(), ApiError> {
    if !state.store.mark_inbound_read(id, state.clock.now()).await? {
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("message '{id}' not found"),
        ));
    }
    state.upstream.mark_read(id, typing).await.map_err(|why| {
        tracing::warn!(%id, %why, "the upstream did not take a read receipt");
        ApiError::new(ErrorCode::InternalError, format!("the read receipt was not sent: {why}"))
    })
}
