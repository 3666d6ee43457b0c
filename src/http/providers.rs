//! Media providers (admin): `GET/POST /v1/settings/application/media/providers` and `DELETE
//! .../providers/{name}`, kept in the store so every replica knows them (see
//! [`premise_wire::providers`]). A GET answers
//! `{"settings":{"application":{"media":{"providers":[...]}}}}`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get};
use premise_wire::ErrorCode;
use premise_wire::providers::{self, Providers};
use serde_json::{Value, json};

use super::auth::Admin;
use super::body::parse;
use super::documents::{change_as, read_as};
use super::reply::{reply, reply_empty};
use super::{ApiError, AppState};

/// The settings document the providers are kept in.
pub(super) const PROVIDERS: &str = providers::DOCUMENT;
const PATH: &str = "/v1/settings/application/media/providers";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, get(list).post(add))
        .route(&format!("{PATH}/{{name}}"), delete(remove))
}

async fn list(State(state): State<AppState>, _admin: Admin) -> Result<Response, ApiError> {
    // Write-only secrets: a GET shows who and where, never the password or token.
    let stored: Providers = read_as(&state, PROVIDERS).await?;
    let providers: Vec<Value> = stored.providers.iter().map(providers::Provider::shown).collect();
    Ok(reply(
        StatusCode::OK,
        json!({ "settings": { "application": { "media": { "providers": providers } } } }),
    ))
}

/// The body is a JSON array (the shared JSON reader takes only objects).
async fn add(
    State(state): State<AppState>,
    Admin(admin): Admin,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body: Value = if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(ErrorCode::InvalidRequest, format!("request body is not valid JSON: {e}"))
        })?
    } else {
        parse(&body)?
    };
    let saved =
        change_as(&state, PROVIDERS, |current: Providers| Ok(current.merged(&body)?)).await?;
    tracing::info!(providers = saved.providers.len(), by = %admin.username, "media providers set");
    Ok(reply_empty(StatusCode::OK))
}

async fn remove(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    change_as(&state, PROVIDERS, |current: Providers| {
        current.without(&name).ok_or_else(|| {
            ApiError::new(ErrorCode::ResourceNotFound, format!("no media provider named '{name}'"))
        })
    })
    .await?;
    tracing::info!(provider = %name, by = %admin.username, "media provider deleted");
    Ok(reply_empty(StatusCode::OK))
}
