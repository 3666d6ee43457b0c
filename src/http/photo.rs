//! `GET/POST/DELETE /v1/settings/profile/photo` (admin): the business's profile photo. A POST
//! sends the raw bytes of a JPEG or PNG (at most 5 MB, at least 192 pixels a side) with its
//! `Content-Type`; a GET answers them, or with `?format=link`
//! `{"settings":{"profile":{"photo":{"link"}}}}`, a link that downloads them with the
//! caller's token. Kept in the store as a settings document, so every replica serves it.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use premise_wire::photo::{MAX_PHOTO_BYTES, profile_photo};
use premise_wire::{ErrorCode, Rejection};
use serde::Deserialize;
use serde_json::json;

use super::auth::Admin;
use super::documents::{change, read};
use super::reply::{reply, reply_empty, url_as_reached};
use super::{ApiError, AppState};

const PHOTO: &str = "profile.photo";
const PATH: &str = "/v1/settings/profile/photo";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, get(show).post(set).delete(remove))
        // Room for the largest photo, so a larger one is told why it is refused.
        .layer(DefaultBodyLimit::max(MAX_PHOTO_BYTES + 1024))
}

#[derive(Debug, Deserialize)]
struct PhotoQuery {
    format: Option<String>,
}

async fn show(
    State(state): State<AppState>,
    _admin: Admin,
    headers: HeaderMap,
    Query(query): Query<PhotoQuery>,
) -> Result<Response, ApiError> {
    let link = match query.format.as_deref() {
        None | Some("") | Some("binary") => false,
        Some("link") => true,
        Some(other) => {
            return Err(
                Rejection::invalid("format", format!("link or binary, not {other:?}")).into()
            );
        }
    };
    let stored = read(&state, PHOTO).await?.0;
    let (Some(mime), Some(data)) = (stored["mime"].as_str(), stored["data"].as_str()) else {
        return Err(ApiError::new(ErrorCode::ResourceNotFound, "no profile photo is set"));
    };
    if link {
        let link = url_as_reached(&state, &headers, PATH);
        return Ok(reply(
            StatusCode::OK,
            json!({ "settings": { "profile": { "photo": { "link": link } } } }),
        ));
    }
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(data).map_err(ApiError::internal)?;
    Ok(([(CONTENT_TYPE, mime.to_owned())], bytes).into_response())
}

async fn set(
    State(state): State<AppState>,
    Admin(admin): Admin,
    request: Request,
) -> Result<Response, ApiError> {
    let content_type =
        request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = super::body::read(request, &state).await?;
    let mime = profile_photo(content_type.as_deref(), &bytes)?;
    let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
    change(&state, PHOTO, |_| Ok(json!({ "mime": mime, "data": data }))).await?;
    tracing::info!(bytes = bytes.len(), mime, by = %admin.username, "profile photo set");
    Ok(reply_empty(StatusCode::OK))
}

async fn remove(State(state): State<AppState>, Admin(admin): Admin) -> Result<Response, ApiError> {
    state.store.delete_document(PHOTO).await?;
    tracing::info!(by = %admin.username, "profile photo deleted");
    Ok(reply_empty(StatusCode::OK))
}
