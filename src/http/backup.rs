//! Backup and restore of the settings (admin), as On-Premises had them:
//!
//! - `POST /v1/settings/backup` `{password}` → `{"settings":{"data":"..."}}`: the application
//!   settings, the shard count and every settings document (profiles, compliance info, two-step
//!   verification, registration, media providers, certificates), sealed with the password
//!   ([`crate::backup`]). Never user accounts or passwords, nor contacts' data.
//! - `POST /v1/settings/restore` `{password, data}`: puts them back. A wrong password or data
//!   altered in any way is 400 and changes nothing.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use premise_wire::fields::{object, text};
use premise_wire::{Rejection, ShardCount};
use serde_json::{Map, Value, json};

use super::auth::Admin;
use super::body::JsonBody;
use super::documents::change;
use super::reply::{reply, reply_empty};
use super::{ApiError, AppState};
use crate::backup::{OpenError, open, seal};

/// The version of what a backup holds.
const FORMAT: u64 = 1;
/// The longest password taken.
const MAX_PASSWORD: usize = 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/settings/backup", post(backup))
        .route("/v1/settings/restore", post(restore))
}

/// Settings documents, as opposed to the contact data kept beside them.
fn is_setting(name: &str) -> bool {
    !name.starts_with("contact.")
}

async fn backup(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let password = text(object("backup", &body)?, "password", "password", 1, MAX_PASSWORD)?;
    let (application, _) = state.settings.fresh().await?;
    let shards = state.store.account().await?.shards;
    let mut documents = Map::new();
    for stored in state.store.all_documents().await? {
        if is_setting(&stored.name) {
            let document: Value = serde_json::from_str(&stored.body).map_err(ApiError::internal)?;
            documents.insert(stored.name, document);
        }
    }
    let contents = json!({
        "format": FORMAT,
        "application": application,
        "shards": shards,
        "documents": documents,
    });
    let data =
        tokio::task::spawn_blocking(move || seal(&password, contents.to_string().as_bytes()))
            .await
            .map_err(ApiError::internal)?;
    tracing::info!(by = %admin.username, "settings backed up");
    Ok(reply(StatusCode::OK, json!({ "settings": { "data": data } })))
}

async fn restore(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let request = object("restore", &body)?;
    let password = text(request, "password", "password", 1, MAX_PASSWORD)?;
    let data = text(request, "data", "data", 1, 64 * 1024 * 1024)?;
    let opened = tokio::task::spawn_blocking(move || open(&password, &data))
        .await
        .map_err(ApiError::internal)?;
    let contents: Value = match opened {
        Ok(plain) => serde_json::from_slice(&plain).map_err(|_| not_a_backup())?,
        Err(OpenError::Malformed) => return Err(not_a_backup()),
        Err(OpenError::Rejected) => {
            return Err(Rejection::invalid(
                "password",
                "does not open this backup (a wrong password, or the data was altered)",
            )
            .into());
        }
    };
    if contents["format"].as_u64() != Some(FORMAT) {
        return Err(
            Rejection::invalid("data", "a backup of a format this version cannot read").into()
        );
    }
    let application = contents["application"].as_object().cloned().ok_or_else(not_a_backup)?;
    let shards = contents["shards"]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .and_then(ShardCount::new)
        .ok_or_else(not_a_backup)?;
    let documents = contents["documents"].as_object().cloned().ok_or_else(not_a_backup)?;

    for (name, document) in &documents {
        if is_setting(name) {
            change(&state, name, |_| Ok(document.clone())).await?;
        }
    }
    for stored in state.store.all_documents().await? {
        if is_setting(&stored.name) && !documents.contains_key(&stored.name) {
            state.store.delete_document(&stored.name).await?;
        }
    }
    state.settings.put(Value::Object(application)).await?;
    if state.store.account().await?.shards != shards.get() {
        state.store.set_shards(shards.get()).await?;
    }
    tracing::info!(by = %admin.username, documents = documents.len(), "settings restored");
    Ok(reply_empty(StatusCode::OK))
}

fn not_a_backup() -> ApiError {
    Rejection::invalid("data", "not a settings backup made by POST /v1/settings/backup").into()
}
