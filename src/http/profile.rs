//! The account's profile settings (admin), kept in the store so every replica answers alike:
//!
//! - `GET/PATCH /v1/settings/profile/about`: `{"settings":{"profile":{"about":{"text"}}}}`;
//! - `GET/POST /v1/settings/business/profile`: `{"settings":{"business":{"profile":{...}}}}`, a
//!   POST changing only the fields it names (a compare-and-set, redone if another change came
//!   first);
//! - `GET/POST /v1/settings/business/compliance_info`: `{"settings":{"business":
//!   {"compliance_info":{...}}}}`, a POST replacing the whole record;
//! - `POST/DELETE /v1/settings/account/two-step`: a six-digit PIN, kept only as a salted hash.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use premise_wire::compliance::{self, ComplianceInfo};
use premise_wire::profile::{self, BusinessProfile};
use serde_json::{Value, json};

use super::auth::Admin;
use super::body::JsonBody;
use super::documents::{change, change_as, read, read_as};
use super::reply::{reply, reply_empty};
use super::{ApiError, AppState};
use crate::account::TwoStep;

const ABOUT: &str = "profile.about";
const BUSINESS_PROFILE: &str = "business.profile";
const COMPLIANCE_INFO: &str = "business.compliance_info";
const TWO_STEP: &str = "account.two_step";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/settings/profile/about", get(show_about).patch(set_about))
        .route("/v1/settings/business/profile", get(show_business).post(set_business))
        .route("/v1/settings/business/compliance_info", get(show_compliance).post(set_compliance))
        .route("/v1/settings/account/two-step", post(enable_two_step).delete(disable_two_step))
}

async fn show_about(State(state): State<AppState>, _admin: Admin) -> Result<Response, ApiError> {
    let stored = read(&state, ABOUT).await?.0;
    let text = stored.get("text").and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(reply(StatusCode::OK, json!({ "settings": profile::about_view(&text) })))
}

async fn set_about(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let text = profile::about(&body)?;
    change(&state, ABOUT, |_| Ok(json!({ "text": text }))).await?;
    tracing::info!(by = %admin.username, "profile about changed");
    Ok(reply_empty(StatusCode::OK))
}

async fn show_business(State(state): State<AppState>, _admin: Admin) -> Result<Response, ApiError> {
    let stored: BusinessProfile = read_as(&state, BUSINESS_PROFILE).await?;
    Ok(reply(StatusCode::OK, json!({ "settings": stored.view() })))
}

async fn set_business(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    change_as(&state, BUSINESS_PROFILE, |current: BusinessProfile| Ok(current.changed_by(&body)?))
        .await?;
    tracing::info!(by = %admin.username, "business profile changed");
    Ok(reply_empty(StatusCode::OK))
}

async fn show_compliance(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Response, ApiError> {
    // Never set: an empty record, as On-Premises showed it.
    let stored: Option<ComplianceInfo> = read_as(&state, COMPLIANCE_INFO).await?;
    let shown = stored.map_or_else(|| json!({}), |info| json!(info));
    Ok(reply(StatusCode::OK, json!({ "settings": { "business": { "compliance_info": shown } } })))
}

async fn set_compliance(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let record = compliance::compliance_info(&body)?;
    change_as(&state, COMPLIANCE_INFO, |_: Option<ComplianceInfo>| Ok(Some(record.clone())))
        .await?;
    tracing::info!(by = %admin.username, "business compliance info set");
    Ok(reply_empty(StatusCode::OK))
}

async fn enable_two_step(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let pin = profile::two_step_pin(&body)?;
    let salt = uuid::Uuid::new_v4().simple().to_string();
    let sealed = state.codes.seal(&salt, &pin);
    let set = TwoStep::set(salt, sealed);
    change_as(&state, TWO_STEP, |_| Ok(set.clone())).await?;
    tracing::info!(by = %admin.username, "two-step verification enabled");
    Ok(reply_empty(StatusCode::OK))
}

async fn disable_two_step(
    State(state): State<AppState>,
    Admin(admin): Admin,
) -> Result<Response, ApiError> {
    state.store.delete_document(TWO_STEP).await?;
    tracing::info!(by = %admin.username, "two-step verification disabled");
    Ok(reply_empty(StatusCode::OK))
}

/// Whether `pin` may be used where the two-step verification PIN is asked for: any (or none)
/// while two-step verification is off, only the PIN set while it is on. `Err` names the field.
/// Wrong guesses are counted in the store (every replica counts the same ones): after
/// [`crate::account::MAX_WRONG_PINS`] in a row no PIN is checked for
/// [`crate::account::PIN_LOCK_SECS`] (429/1015), so the six
/// digits cannot be tried one after the other; the right PIN clears the count.
pub(super) async fn check_two_step_pin(
    state: &AppState,
    pin: Option<&str>,
) -> Result<(), ApiError> {
    let stored: TwoStep = read_as(state, TWO_STEP).await?;
    let Some(salt) = stored.pin_salt() else { return Ok(()) };
    let now = state.clock.now_secs();
    if let Some(left) = stored.locked_for(now) {
        return Err(ApiError::new(
            premise_wire::ErrorCode::TooManyRequests,
            format!("too many wrong two-step verification PINs: try again in {left} s"),
        ));
    }
    let Some(pin) = pin else { return Err(premise_wire::Rejection::missing("pin").into()) };
    // Counted against the PIN as stored (by its salt): a PIN set meanwhile starts afresh.
    if stored.matches(pin, &state.codes) {
        if stored.wrong > 0 {
            change_as(state, TWO_STEP, |current: TwoStep| Ok(current.after_right_pin(salt)))
                .await?;
        }
        return Ok(());
    }
    change_as(state, TWO_STEP, |current: TwoStep| Ok(current.after_wrong_pin(salt, now))).await?;
    Err(premise_wire::Rejection::invalid("pin", "does not match the two-step verification PIN")
        .into())
}
