//! The one error type of the HTTP boundary. Its response is always the On-Premises envelope
//! `{"errors":[{"code","title","details"}],"meta":{...}}`; internal causes are logged with
//! their chain and never sent to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use premise_store::{Outage, StoreError};
use premise_wire::{ErrorCode, ErrorDetail, Rejection, shorten_quotes};

use super::reply::reply;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    details: String,
    /// Set for internal failures: logged, never shown.
    cause: Option<anyhow::Error>,
}

impl ApiError {
    /// An error answered with the HTTP status On-Premises used for `code`.
    pub fn new(code: ErrorCode, details: impl Into<String>) -> Self {
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self { status, code, details: shorten_quotes(&details.into()), cause: None }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// 401 with 1005 "Invalid credentials.": missing, malformed, expired or revoked credentials.
    pub fn unauthorized() -> Self {
        Self::new(ErrorCode::AccessDenied, "Invalid credentials.")
            .with_status(StatusCode::UNAUTHORIZED)
    }

    /// 403 with 1005: authenticated, but not allowed to do this.
    pub fn forbidden(details: impl Into<String>) -> Self {
        Self::new(ErrorCode::AccessDenied, details)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn details(&self) -> &str {
        &self.details
    }

    /// Logs the internal cause, if any (responses never carry it).
    pub fn log(&self) {
        if let Some(cause) = &self.cause {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
    }

    /// 503 with 1016: the database cannot serve now (promise 1: nothing was stored).
    pub fn unavailable(outage: Outage) -> Self {
        Self::new(
            ErrorCode::SystemOverloaded,
            format!(
                "The database is unavailable: {}. Nothing was stored; try again later.",
                outage.describe()
            ),
        )
    }

    /// 500 with 1014, the cause logged; or 503 with 1016 when the cause is a database outage,
    /// which is no internal error but a fault that clears.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let cause = cause.into();
        let outage =
            cause.chain().find_map(|e| e.downcast_ref::<StoreError>()).and_then(StoreError::outage);
        if let Some(outage) = outage {
            tracing::warn!(error = format!("{cause:#}"), "request refused: database outage");
            return Self::unavailable(outage);
        }
        Self {
            cause: Some(cause),
            ..Self::new(ErrorCode::InternalError, "An internal error occurred; it has been logged.")
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        Self::new(r.code, r.details)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::internal(e)
    }
}

impl From<crate::auth::AccountError> for ApiError {
    fn from(e: crate::auth::AccountError) -> Self {
        use crate::auth::AccountError;
        match e {
            AccountError::NotFound => Self::new(ErrorCode::ResourceNotFound, "No such user."),
            AccountError::Exists => {
                Self::new(ErrorCode::ResourceAlreadyExists, "User already exists.")
            }
            AccountError::Busy => Self::new(
                ErrorCode::SystemOverloaded,
                "Too many logins and password changes at once; try again shortly.",
            ),
            AccountError::Internal(cause) => Self::internal(cause),
        }
    }
}

/// A message not taken into the queue, as the integration is answered: 1016 when Premise is
/// overloaded, 503 while the database cannot take writes, 401 when its token no longer holds.
impl From<premise_engine::EnqueueError> for ApiError {
    fn from(error: premise_engine::EnqueueError) -> Self {
        use premise_engine::EnqueueError;
        match error {
            EnqueueError::Overloaded(why) => Self::new(ErrorCode::SystemOverloaded, why),
            EnqueueError::Unavailable(outage) => Self::unavailable(outage),
            EnqueueError::Refused => Self::unauthorized(),
            EnqueueError::Failed(cause) => Self::internal(cause),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let errors = [ErrorDetail::new(self.code, self.details)];
        reply(self.status, serde_json::json!({ "errors": errors }))
    }
}
