//! The account's settings documents (profiles, compliance, registration, providers...), each a
//! JSON object kept in the store under its name, so every replica answers the same: read one,
//! or change one by compare-and-set, redone when another change came first.

use premise_wire::{ErrorCode, Rejection};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{ApiError, AppState};

/// The stored document `name` (an empty object if none) and its text as stored.
pub async fn read(state: &AppState, name: &str) -> Result<(Value, Option<String>), ApiError> {
    let text = state.store.document(name).await?;
    let doc = match &text {
        Some(text) => serde_json::from_str(text).map_err(ApiError::internal)?,
        None => json!({}),
    };
    Ok((doc, text))
}

/// Replaces the document `name` with what `update` makes of it (and answers that), as a
/// compare-and-set redone when another change came first.
pub async fn change(
    state: &AppState,
    name: &str,
    update: impl Fn(&Value) -> Result<Value, Rejection>,
) -> Result<Value, ApiError> {
    change_with(state, name, |current| update(current).map_err(ApiError::from)).await
}

/// [`change`] with an update that may refuse with any error.
pub async fn change_with(
    state: &AppState,
    name: &str,
    update: impl Fn(&Value) -> Result<Value, ApiError>,
) -> Result<Value, ApiError> {
    for _ in 0..100 {
        let (current, text) = read(state, name).await?;
        let next = update(&current)?;
        if state.store.replace_document(name, text.as_deref(), &next.to_string()).await? {
            return Ok(next);
        }
    }
    Err(ApiError::new(
        ErrorCode::TooManyRequests,
        format!("the {name} settings are being changed by many requests at once: try again"),
    ))
}

/// The stored document `name` as the domain type that keeps it (its default if none). A
/// document that does not read as one is an error, never taken for an empty one (a change
/// would then lose what it holds).
pub async fn read_as<T: DeserializeOwned + Default>(
    state: &AppState,
    name: &str,
) -> Result<T, ApiError> {
    match state.store.document(name).await? {
        Some(text) => serde_json::from_str(&text).map_err(|e| {
            ApiError::internal(anyhow::anyhow!("the {name} settings cannot be read: {e}"))
        }),
        None => Ok(T::default()),
    }
}

/// [`change_with`] on the domain type that keeps the document: `update` makes the next value
/// from the current one (and answers it).
pub async fn change_as<T: Serialize + DeserializeOwned + Default>(
    state: &AppState,
    name: &str,
    update: impl Fn(T) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let next = change_with(state, name, |current| {
        let current: T = match current.as_object().is_some_and(serde_json::Map::is_empty) {
            true => T::default(),
            false => serde_json::from_value(current.clone()).map_err(|e| {
                ApiError::internal(anyhow::anyhow!("the {name} settings cannot be read: {e}"))
            })?,
        };
        serde_json::to_value(update(current)?).map_err(ApiError::internal)
    })
    .await?;
    serde_json::from_value(next).map_err(ApiError::internal)
}
