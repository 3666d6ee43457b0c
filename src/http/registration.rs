//! Registration (admin), as On-Premises had it: `POST /v1/account` `{cc, phone_number, method,
//! cert, pin?}` asks for a code and answers 202 `{"account":[{"vname"}]}` (the verified name
//! the certificate carries), or 201 when that number is already registered; `POST
//! /v1/account/verify` `{code}` registers with the code and answers 201.
//!
//! With the sandbox the code is "sent" to the server's log (a line with the number, the method
//! and the code); a code is good for [`CODE_TTL_SECS`] and [`crate::account::MAX_ATTEMPTS`] wrong guesses.
//! Through the Cloud API the number is registered in Meta's WhatsApp Manager, not here: the
//! request is checked and answered 201, already registered. The state is a settings document,
//! so every replica sees the same registration; the code is kept only as a salted hash.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use premise_wire::ErrorCode;
use premise_wire::registration::{registration_request, verification_code};
use serde_json::{Value, json};

use super::auth::Admin;
use super::body::JsonBody;
use super::documents::{change_as, read_as};
use super::reply::{reply, reply_empty};
use super::{ApiError, AppState};
use crate::account::{CODE_TTL_SECS, PendingCode, Registration};

pub(super) const REGISTRATION: &str = "account.registration";

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
    let current: Registration = read_as(&state, REGISTRATION).await?;
    if current.is_registered(&number) || state.sandbox.is_none() {
        let registered =
            Registration::Registered { number: number.clone(), vname: Some(request.vname.clone()) };
        change_as(&state, REGISTRATION, |_| Ok(registered.clone())).await?;
        tracing::info!(number = %number, by = %admin.username, "account registered");
        return Ok(reply_empty(StatusCode::CREATED));
    }
    let code = format!("{:06}", uuid::Uuid::new_v4().as_u128() % 1_000_000);
    let salt = uuid::Uuid::new_v4().simple().to_string();
    let pending = Registration::Pending(PendingCode {
        number: number.clone(),
        vname: Some(request.vname.clone()),
        method: request.method.as_str().to_owned(),
        code_hmac: state.codes.seal(&salt, &code),
        salt,
        expires_at: state.clock.now_secs() + CODE_TTL_SECS,
        attempts: 0,
    });
    change_as(&state, REGISTRATION, |_| Ok(pending.clone())).await?;
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
    let outcome = change_as(&state, REGISTRATION, |current: Registration| {
        Ok(current.verified(&code, now, &state.codes)?)
    })
    .await?;
    let Registration::Registered { number, .. } = outcome else {
        return Err(ApiError::new(
            ErrorCode::ParameterValueInvalid,
            "code: does not match the code that was sent",
        ));
    };
    tracing::info!(number = %number, by = %admin.username, "account registered");
    Ok(reply_empty(StatusCode::CREATED))
}
