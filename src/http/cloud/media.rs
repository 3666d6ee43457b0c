//! Media in the Cloud API's form, over the same media store as `/v1/media`:
//!
//! - `POST /[{version}/]{phone-number-id}/media`, multipart (`messaging_product=whatsapp`,
//!   `type=<mime>`, `file`): `{"id":"<digits>"}`. Ids issued here are numeric strings, as
//!   Cloud's are (clients check); the file is streamed into the store as it arrives.
//! - `GET /[{version}/]{media-id}`: `{"messaging_product","url","mime_type","sha256",
//!   "file_size","id"}`, where `url` is Premise's `/v1/media/{id}`, which downloads the bytes
//!   with the same bearer token.
//! - `DELETE /[{version}/]{media-id}`: `{"success":true}`.
//!
//! Ids of either form (numeric from here, UUIDs from `/v1/media`) work in both dialects.

use axum::Json;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{Multipart, Path, State};
use axum::http::header::HeaderMap;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use premise_wire::media::{MediaType, empty_upload};
use premise_wire::{ErrorCode, Rejection};
use serde_json::{Value, json};

use super::super::auth::Caller;
use super::super::media::Upload;
use super::super::reply::url_as_reached;
use super::super::{ApiError, AppState, not_found_path};
use super::{cloud_error, graph_error, is_graph_version};

pub(in crate::http) async fn upload_versioned(
    State(state): State<AppState>,
    Path((version, _phone_number_id)): Path<(String, String)>,
    uri: Uri,
    caller: Result<Caller, ApiError>,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    if !is_graph_version(&version) {
        return not_found_path(uri.path()).into_response();
    }
    answer(upload(&state, caller, form).await)
}

pub(in crate::http) async fn upload_versionless(
    State(state): State<AppState>,
    Path(_phone_number_id): Path<String>,
    caller: Result<Caller, ApiError>,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    answer(upload(&state, caller, form).await)
}

pub(in crate::http) async fn lookup_versioned(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    caller: Result<Caller, ApiError>,
) -> Response {
    if !is_graph_version(&version) {
        return not_found_path(uri.path()).into_response();
    }
    lookup(&state, &headers, caller, &id).await
}

pub(in crate::http) async fn lookup_versionless(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    caller: Result<Caller, ApiError>,
) -> Response {
    if !is_media_id(&id) {
        return not_found_path(uri.path()).into_response();
    }
    lookup(&state, &headers, caller, &id).await
}

pub(in crate::http) async fn delete_versioned(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    uri: Uri,
    caller: Result<Caller, ApiError>,
) -> Response {
    if !is_graph_version(&version) {
        return not_found_path(uri.path()).into_response();
    }
    delete(&state, caller, &id).await
}

pub(in crate::http) async fn delete_versionless(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    caller: Result<Caller, ApiError>,
) -> Response {
    if !is_media_id(&id) {
        return not_found_path(uri.path()).into_response();
    }
    delete(&state, caller, &id).await
}

/// A Cloud media id (digits) or one of `/v1/media` (a UUID): what a one-segment path may be.
fn is_media_id(id: &str) -> bool {
    (!id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_digit()))
        || uuid::Uuid::parse_str(id).is_ok()
}

fn answer(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(body) => (StatusCode::OK, Json(body)).into_response(),
        Err(e) => cloud_error(&e),
    }
}

/// Graph's answer for an id it does not know.
fn no_such_object(id: &str) -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        100,
        Some(33),
        "GraphMethodException",
        &format!(
            "Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due \
             to missing permissions, or does not support this operation"
        ),
    )
}

async fn upload(
    state: &AppState,
    caller: Result<Caller, ApiError>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Value, ApiError> {
    caller?;
    let mut form = form.map_err(|e| {
        ApiError::new(ErrorCode::InvalidRequest, format!("expected multipart/form-data: {e}"))
    })?;
    let (mut product, mut declared, mut stored) = (None, None, None);
    let outcome = async {
        while let Some(field) = form.next_field().await.map_err(|e| unreadable(&e))? {
            match field.name().unwrap_or_default() {
                "messaging_product" => {
                    product = Some(field.text().await.map_err(|e| unreadable(&e))?);
                }
                "type" => {
                    declared = Some(field.text().await.map_err(|e| unreadable(&e))?);
                }
                "file" if stored.is_none() => {
                    stored = Some(store_file(state, field, declared.as_deref()).await?);
                }
                "file" => return Err(Rejection::invalid("file", "give one file").into()),
                // Cloud ignores fields it does not use; so does Premise.
                _ => {}
            }
        }
        match (&stored, product.as_deref()) {
            (None, _) => Err(ApiError::from(Rejection::missing("file"))),
            (Some(_), Some("whatsapp")) => Ok(()),
            (Some(_), None) => Err(Rejection::missing("messaging_product").into()),
            (Some(_), Some(other)) => {
                Err(Rejection::invalid("messaging_product", format!("'{other}' is not whatsapp"))
                    .into())
            }
        }
    }
    .await;
    match (outcome, stored) {
        (Ok(()), Some(id)) => Ok(json!({ "id": id })),
        (result, stored) => {
            if let Some(id) = stored
                && let Err(e) = state.store.delete_media(&id).await
            {
                tracing::warn!(%id, error = format!("{e:#}"), "cannot delete a refused upload; it will be purged later");
            }
            Err(result.err().unwrap_or_else(|| Rejection::missing("file").into()))
        }
    }
}

fn unreadable(e: &axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, format!("cannot read the upload: {e}"))
        .with_status(e.status())
}

/// Streams the `file` part into the store under a new numeric id: its type is the `type` field
/// if it came first, else the part's own `Content-Type`.
async fn store_file(
    state: &AppState,
    mut field: Field<'_>,
    declared: Option<&str>,
) -> Result<String, ApiError> {
    let mime = declared.or(field.content_type()).ok_or_else(|| Rejection::missing("type"))?;
    let media_type = MediaType::parse(Some(mime))?;
    let mut upload =
        Upload::with_id(numeric_id(), state.store.clone(), media_type, state.clock.clone());
    let mut received = 0u64;
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                received += chunk.len() as u64;
                if received > upload.media_type.max_bytes() {
                    let too_large = upload.media_type.too_large();
                    upload.abandon().await;
                    return Err(too_large.into());
                }
                if let Err(e) = upload.write(&chunk).await {
                    upload.abandon().await;
                    return Err(e);
                }
            }
            Ok(None) => break,
            Err(e) => {
                upload.abandon().await;
                return Err(unreadable(&e));
            }
        }
    }
    if received == 0 {
        upload.abandon().await;
        return Err(empty_upload().into());
    }
    upload.finish().await
}

/// A 16-digit id, as Cloud's media ids look.
fn numeric_id() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes[..8]);
    (u64::from_le_bytes(first) % 9_000_000_000_000_000 + 1_000_000_000_000_000).to_string()
}

async fn lookup(
    state: &AppState,
    headers: &HeaderMap,
    caller: Result<Caller, ApiError>,
    id: &str,
) -> Response {
    if let Err(e) = caller {
        return cloud_error(&e);
    }
    match state.store.media(id).await {
        Ok(Some(info)) => answer(Ok(json!({
            "messaging_product": "whatsapp",
            "url": download_url(state, headers, id),
            "mime_type": info.mime_type,
            "sha256": info.sha256,
            "file_size": info.size.to_string(),
            "id": id,
        }))),
        Ok(None) => no_such_object(id),
        Err(e) => cloud_error(&ApiError::from(e)),
    }
}

/// Where the bytes download from, with the caller's token: this server's `/v1/media/{id}` as
/// the client reached it (its `Host`, and the scheme a trusted proxy reports, or this
/// listener's).
fn download_url(state: &AppState, headers: &HeaderMap, id: &str) -> String {
    url_as_reached(state, headers, &format!("/v1/media/{id}"))
}

async fn delete(state: &AppState, caller: Result<Caller, ApiError>, id: &str) -> Response {
    if let Err(e) = caller {
        return cloud_error(&e);
    }
    match state.store.delete_media(id).await {
        Ok(true) => answer(Ok(json!({ "success": true }))),
        Ok(false) => no_such_object(id),
        Err(e) => cloud_error(&ApiError::from(e)),
    }
}
