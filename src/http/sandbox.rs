//! `/v1/sandbox/...` (admin): driving the built-in sandbox WhatsApp network from tests.
//!
//! - `POST /v1/sandbox/inbound` injects a customer's message: it is stored in the inbox (so
//!   `PUT /v1/messages/{id}` marks it read), delivered as an On-Premises inbound webhook through
//!   the callback outbox (durable and retried like status callbacks), and opens the customer's
//!   24-hour customer-service window. The customer is named by `from` (a number, or a
//!   business-scoped user id), `user_id`, or only `profile.username`: a username customer with
//!   no number, whose BSUID is made up from the username (see the sandbox's `users`).
//! - `POST /v1/sandbox/clock` moves the sandbox's clock, which judges that window, so a test
//!   can step past 24 hours without waiting.
//! - `GET/POST /v1/sandbox/templates`, `DELETE /v1/sandbox/templates/{name}/{language}` manage
//!   the template registry that template messages are checked against (kept in the store, so
//!   every replica agrees).

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post};
use premise_base::UnixMs;
use premise_engine::new_message_id;
use premise_store::{KnownCustomer, NewInbound, Routed};
use premise_upstream::sandbox::templates::TemplateDef;
use premise_upstream::sandbox::{SandboxWorld, users};
use premise_wire::messages::Recipient;
use premise_wire::messages::inbound::Inbound;
use premise_wire::{ErrorCode, Rejection};
use serde_json::{Value, json};

use super::auth::Admin;
use super::body::{JsonBody, OptionalJsonBody};
use super::reply::{reply, reply_empty};
use super::{ApiError, AppState};

/// The sandbox's state; 404 like any unknown path when the upstream is not the sandbox.
fn world(state: &AppState) -> Result<Arc<SandboxWorld>, ApiError> {
    state.sandbox.clone().ok_or_else(|| {
        ApiError::new(
            ErrorCode::ResourceNotFound,
            "the sandbox endpoints exist only with upstream.kind = sandbox",
        )
    })
}

/// `contacts[0].profile.name` when the injection names no profile.
const DEFAULT_PROFILE_NAME: &str = "Sandbox Customer";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/sandbox/inbound", post(inbound))
        .route("/v1/sandbox/clock", post(clock))
        .route("/v1/sandbox/templates", get(list_templates).post(add_template))
        .route("/v1/sandbox/templates/{name}/{language}", delete(delete_template))
}

/// 201 `{"messages":[{"id"}]}` once the message and its webhook are committed.
async fn inbound(
    State(state): State<AppState>,
    _admin: Admin,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let id = write_as_customer(&state, &body).await?;
    Ok(reply(StatusCode::CREATED, json!({ "messages": [{ "id": id }] })))
}

/// A customer's message injected into the sandbox (the body of `POST /v1/sandbox/inbound`),
/// stored with its webhook queued: its id. (The API's injection, and the console's composer.)
pub(crate) async fn write_as_customer(state: &AppState, body: &Value) -> Result<String, ApiError> {
    let world = world(state)?;
    let inbound = Inbound::parse(body)?;
    let id = inbound.id.clone().unwrap_or_else(|| format!("ABG{}", &new_message_id()[3..]));
    let sent_at_secs = match &inbound.timestamp {
        Some(given) => given
            .parse::<i64>()
            .map_err(|_| Rejection::invalid("timestamp", format!("'{given}' is out of range")))?,
        None => world.clock.now_ms() / 1000,
    };
    // Who wrote: their number when given (or their BSUID in `from`, number hidden); their BSUID
    // as given or derived (from the number, or for a username customer from the username).
    let user_id = match (&inbound.user_id, &inbound.from, &inbound.username) {
        (Some(user), _, _) | (None, Some(Recipient::User(user)), _) => user.as_str().to_owned(),
        (None, Some(Recipient::Phone(phone)), _) => users::user_id_of(phone.as_str()),
        (None, None, username) => users::user_id_of_username(username.as_deref().unwrap_or("")),
    };
    let from = inbound.from.as_ref().map_or(user_id.as_str(), Recipient::as_str).to_owned();
    let (message, webhook) =
        inbound.webhook(&id, &sent_at_secs.to_string(), DEFAULT_PROFILE_NAME, &from, &user_id);
    let stored = NewInbound {
        id: id.clone(),
        from: Routed::new(from.as_str()),
        received_at: state.clock.now(),
        payload: message.to_string(),
        webhook: webhook.to_string(),
    };
    if !state.store.receive_inbound(&stored).await? {
        return Err(ApiError::new(
            ErrorCode::ResourceAlreadyExists,
            format!("id: an inbound message '{id}' already exists"),
        ));
    }
    let known = KnownCustomer {
        user_id: user_id.clone(),
        wa_id: inbound.from.as_ref().and_then(Recipient::phone).map(|p| p.as_str().to_owned()),
        parent_user_id: None,
        username: inbound.username.clone(),
        profile_name: Some(
            inbound.profile_name.as_deref().unwrap_or(DEFAULT_PROFILE_NAME).to_owned(),
        ),
    };
    state.store.learn_customers(&[known], state.clock.now()).await?;
    // The window opens for each id the integration may reply to: the number and the BSUID.
    for key in [from.as_str(), user_id.as_str()] {
        state.store.customer_wrote(key, UnixMs::from_secs(sent_at_secs)).await?;
        world.windows.customer_wrote(key, sent_at_secs * 1000);
        if from == user_id {
            break;
        }
    }
    Ok(id)
}

/// `{"advance_seconds": n}` moves sandbox time forward by n seconds (negative: back);
/// `{"timestamp": unix_seconds}` sets it; an empty body only reads it. 200
/// `{"sandbox":{"clock":{"timestamp":"<unix seconds>"}}}`.
async fn clock(
    State(state): State<AppState>,
    _admin: Admin,
    OptionalJsonBody(body): OptionalJsonBody<Value>,
) -> Result<Response, ApiError> {
    let world = world(&state)?;
    let clock = &world.clock;
    let now = match body {
        None => clock.now_ms(),
        Some(body) => {
            let Value::Object(map) = &body else {
                return Err(Rejection::invalid("body", "expected an object").into());
            };
            if let Some(key) = map.keys().find(|k| *k != "advance_seconds" && *k != "timestamp") {
                return Err(ApiError::new(
                    ErrorCode::ParameterNotRequired,
                    format!("Parameter '{key}' is not a known parameter"),
                ));
            }
            match (map.get("advance_seconds"), map.get("timestamp")) {
                (Some(_), Some(_)) => {
                    return Err(ApiError::new(
                        ErrorCode::ParameterNotRequired,
                        "Exactly one of the following parameters must be present: 'advance_seconds', 'timestamp'",
                    ));
                }
                (Some(advance), None) => {
                    advance_clock(&state, seconds("advance_seconds", advance)?).await?
                }
                (None, Some(at)) => {
                    let offset = seconds("timestamp", at)? * 1000 - state.clock.now_ms();
                    let moved = state.store.move_sandbox_clock(offset, true).await?;
                    world.changed();
                    clock.set_offset(moved);
                    clock.now_ms()
                }
                (None, None) => clock.now_ms(),
            }
        }
    };
    Ok(reply(
        StatusCode::OK,
        json!({ "sandbox": { "clock": { "timestamp": (now / 1000).to_string() } } }),
    ))
}

/// Moves the sandbox's clock by `seconds` (every replica's: the offset is kept in the store);
/// sandbox time now, ms.
pub(crate) async fn advance_clock(state: &AppState, seconds: i64) -> Result<i64, ApiError> {
    let world = world(state)?;
    let moved = state.store.move_sandbox_clock(seconds.saturating_mul(1000), false).await?;
    world.changed();
    world.clock.set_offset(moved);
    Ok(world.clock.now_ms())
}

/// A whole number of seconds (a JSON integer or a string of one), within ±100 years.
fn seconds(field: &str, value: &Value) -> Result<i64, Rejection> {
    let parsed = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    parsed
        .filter(|s: &i64| s.unsigned_abs() <= 100 * 366 * 86_400)
        .ok_or_else(|| Rejection::invalid(field, "expected a whole number of seconds"))
}

/// 200 `{"templates":[...]}`, every definition in the registry; those learned from their first
/// use (`sandbox.check_templates = "learn"`) carry `"learned": true`.
async fn list_templates(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Response, ApiError> {
    world(&state)?;
    let mut templates = Vec::new();
    for definition in state.store.sandbox_templates().await? {
        templates.push(serde_json::from_str::<Value>(&definition).map_err(ApiError::internal)?);
    }
    Ok(reply(StatusCode::OK, json!({ "templates": templates })))
}

/// Adds a template, or replaces the one of that name and language: 201 `{"templates":[it]}`.
async fn add_template(
    State(state): State<AppState>,
    _admin: Admin,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let world = world(&state)?;
    let mut template: TemplateDef = serde_path_to_error::deserialize(&body).map_err(|e| {
        let path = e.path().to_string();
        Rejection::invalid(if path == "." { "template" } else { &path }, e.inner())
    })?;
    // Registered by an admin: no longer a learned guess, even if it replaces one.
    template.learned = false;
    template
        .validate()
        .map_err(|why| Rejection::new(ErrorCode::ParameterValueInvalid, why.to_string()))?;
    let definition = serde_json::to_string(&template).map_err(ApiError::internal)?;
    state.store.put_sandbox_template(&template.name, &template.language, &definition, true).await?;
    world.put_template(template.clone());
    Ok(reply(StatusCode::CREATED, json!({ "templates": [template] })))
}

/// 200, or 404/1006 if there is no such template.
async fn delete_template(
    State(state): State<AppState>,
    _admin: Admin,
    Path((name, language)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let world = world(&state)?;
    if !state.store.delete_sandbox_template(&name, &language).await? {
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("no template '{name}' in language '{language}'"),
        ));
    }
    world.remove_template(&name, &language);
    Ok(reply_empty(StatusCode::OK))
}
