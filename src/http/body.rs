//! Reading JSON request bodies. Unlike axum's `Json`, it does not insist on a
//! `Content-Type` (On-Premises integrations often omit it), and its errors are On-Premises
//! errors whose `details` name the failing field by its path.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use premise_wire::ErrorCode;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::error::Category;

use super::ApiError;

/// A JSON body that must be present.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// A JSON body that may be absent (empty); `None` then.
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read(req, state).await?;
        if is_blank(&bytes) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "request body is empty; a JSON object is required",
            ));
        }
        parse(&bytes).map(Self)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read(req, state).await?;
        if is_blank(&bytes) { Ok(Self(None)) } else { parse(&bytes).map(|v| Self(Some(v))) }
    }
}

/// The whole body, within the route's `DefaultBodyLimit` (413 beyond it).
pub async fn read<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "request body is larger than the server accepts",
            )
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        } else {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("cannot read the request body: {rejection}"),
            )
        }
    })
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

/// Syntax errors are 1025 "Invalid Request"; a well-formed body of the wrong shape is 1009 with
/// the path of the offending value (`users[0].name: invalid type: ...`). Bodies are JSON
/// objects; anything else is 1025.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "request body must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = match serde_path_to_error::deserialize(&mut de) {
        Ok(value) => de.end().map(|()| value).map_err(|e| (".".to_owned(), e)),
        Err(err) => Err((err.path().to_string(), err.into_inner())),
    };
    parsed.map_err(|(path, inner)| {
        // A typed parse can stop at a data error before it reaches a syntax error later on:
        // check the syntax of the whole body before blaming a field.
        if inner.classify() != Category::Data {
            return invalid_json(&inner);
        }
        if let Err(syntax) = serde_json::from_slice::<IgnoredAny>(bytes) {
            return invalid_json(&syntax);
        }
        let details = if path == "." { inner.to_string() } else { format!("{path}: {inner}") };
        ApiError::new(ErrorCode::ParameterValueInvalid, details)
    })
}

fn invalid_json(error: &serde_json::Error) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, format!("request body is not valid JSON: {error}"))
}
