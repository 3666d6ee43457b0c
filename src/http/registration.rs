//! Registration (admin), as On-Premises had it: `POST /v1/account` `{cc, phone_number, method,
//! cert, pin?}` asks for a code and answers 202 `{"account":[{"vname"}]}` (the verified name
//! the certificate carries), or 201 when that number is already registered; `POST
//! /v1/account/verify` `{code}` registers with the code and answers 201.
//!
//! With the sandbox the code is "sent" to the server's log (a line with the number, the method
//! and the code); a code is good for [`CODE_TTL_SECS`] and [`MAX_ATTEMPTS`] wrong guesses.
//! Through the Cloud API the number is registered in Meta's WhatsApp Manager, not here: the
//! request is checked and answered 201, already registered. The state is a settings document,
//! so every replica sees the same registration; the code is kept only as a salted hash.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use premise_wire::registration::{registration_request, verification_code};
use premise_wire::{ErrorCode, Rejection};
use serde_json::{Value, json};

use super::auth::Admin;
use super::body::JsonBody;
use super::documents::{change, change_with, read};
use super::reply::{reply, reply_empty};
use super::{ApiError, AppState};

pub(super) const REGISTRATION: &str = "account.registration";
/// How long a code sent is good for.
pub const CODE_TTL_SECS: i64 = 600;
/// Wrong codes allowed before the code is void and a new one must be asked for.
pub const MAX_ATTEMPTS: i64 = 5;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/account", post(request_code)).route("/v1/account/verify", post(verify))
}

async fn request_code(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let request = registration_request(&body)?;
    super::profile::check_two_step_pin(&state, request.pin.as_deref()).await?;
    let number = request.number();
    let (current, _) = read(&state, REGISTRATION).await?;
    let registered = current["state"] == "registered" && current["number"] == number;
    if registered || state.sandbox.is_none() {
        change(&state, REGISTRATION, |_| {
            Ok(json!({ "state": "registered", "number": number, "vname": request.vname }))
        })
        .await?;
        tracing::info!(number = %number, by = %admin.username, "account registered");
        return Ok(reply_empty(StatusCode::CREATED));
    }
    let code = format!("{:06}", uuid::Uuid::new_v4().as_u128() % 1_000_000);
    let salt = uuid::Uuid::new_v4().simple().to_string();
    let expires_at = state.clock.now_secs() + CODE_TTL_SECS;
    change(&state, REGISTRATION, |_| {
        Ok(json!({
            "state": "pending", "number": number, "vname": request.vname,
            "method": request.method.as_str(), "salt": salt, "code_hmac": state.codes.seal(&salt, &code),
            "expires_at": expires_at, "attempts": 0,
        }))
    })
    .await?;
    tracing::info!(
        number = %number,
        method = request.method.as_str(),
        code = %code,
        by = %admin.username,
        "sandbox: registration code sent"
    );
    Ok(reply(StatusCode::ACCEPTED, json!({ "account": [{ "vname": request.vname }] })))
}

async fn verify(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let code = verification_code(&body)?;
    let now = state.clock.now_secs();
    let outcome = change_with(&state, REGISTRATION, |current| {
        if current["state"] != "pending" {
            return Err(Rejection::invalid(
                "code",
                "no code was asked for: POST /v1/account first",
            )
            .into());
        }
        let attempts = current["attempts"].as_i64().unwrap_or(0);
        if current["expires_at"].as_i64().unwrap_or(0) < now || attempts >= MAX_ATTEMPTS {
            return Err(Rejection::invalid(
                "code",
                "the code has expired or was guessed wrong too often: ask for a new one",
            )
            .into());
        }
        let mut next = current.clone();
        let salt = current["salt"].as_str().unwrap_or_default();
        let sealed = current["code_hmac"].as_str().unwrap_or_default();
        if state.codes.matches(salt, &code, sealed) {
            next = json!({ "state": "registered", "number": current["number"],
                "vname": current["vname"] });
        } else {
            next["attempts"] = json!(attempts + 1);
        }
        Ok(next)
    })
    .await?;
    if outcome["state"] != "registered" {
        return Err(ApiError::new(
            ErrorCode::ParameterValueInvalid,
            "code: does not match the code that was sent",
        ));
    }
    tracing::info!(number = %outcome["number"], by = %admin.username, "account registered");
    Ok(reply_empty(StatusCode::CREATED))
}
