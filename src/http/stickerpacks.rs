//! Stickerpacks (see [`premise_wire::stickers`]): WhatsApp's first-party packs with
//! `?namespace=whatsapp` (read only; the sandbox offers two), and the business's third-party
//! packs and their stickers, created, listed, read, changed and deleted. Third-party packs are
//! one settings document in the store, changed by compare-and-set, so every replica serves the
//! same packs. Reading is for any user; changing is for admins.
//!
//! - `GET/POST /v1/stickerpacks` → `{"stickerpacks":[...]}` / 201 `{"stickerpacks":[{"id"}]}`
//! - `GET/PATCH/DELETE /v1/stickerpacks/{id}`
//! - `GET/POST /v1/stickerpacks/{id}/stickers` → `{"stickers":[...]}` / 201
//!   `{"stickers":[{"index"}]}`
//! - `GET/PATCH/DELETE /v1/stickerpacks/{id}/stickers/{index}`

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use premise_wire::stickers::{
    FIRST_PARTY, FIRST_PARTY_PACKS, MAX_STICKER_BYTES, MAX_STICKERS, Pack, PackError, Packs,
    first_party_pack, pack_fields, sticker_fields,
};
use premise_wire::{ErrorCode, Rejection};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Admin, Caller};
use super::body::JsonBody;
use super::documents::{change_as, read_as};
use super::reply::{reply, reply_empty};
use super::{ApiError, AppState};

const PACKS: &str = "stickerpacks";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/stickerpacks", get(list_packs).post(create_pack))
        .route("/v1/stickerpacks/{id}", get(show_pack).patch(update_pack).delete(delete_pack))
        .route("/v1/stickerpacks/{id}/stickers", get(list_stickers).post(create_sticker))
        .route(
            "/v1/stickerpacks/{id}/stickers/{index}",
            get(show_sticker).patch(update_sticker).delete(delete_sticker),
        )
}

#[derive(Debug, Deserialize)]
struct Namespace {
    namespace: Option<String>,
}

impl Namespace {
    fn first_party(&self) -> bool {
        self.namespace.as_deref() == Some(FIRST_PARTY)
    }
}

fn no_pack(id: &str) -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFound, format!("no stickerpack '{id}'"))
}

fn no_sticker(id: &str, index: &str) -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFound, format!("no sticker {index} in stickerpack '{id}'"))
}

/// What the packs refused, as the answer: pack `id`, sticker `index` (as given in the path).
fn refused(error: PackError, id: &str, index: &str) -> ApiError {
    match error {
        PackError::NoPack => no_pack(id),
        PackError::NoSticker => no_sticker(id, index),
        PackError::Full => {
            Rejection::invalid("stickers", format!("at most {MAX_STICKERS} a pack")).into()
        }
    }
}

/// A sticker index from the path; one that is not a number names no sticker.
fn index_of(id: &str, index: &str) -> Result<u64, ApiError> {
    index.parse().map_err(|_| no_sticker(id, index))
}

async fn third_party(state: &AppState) -> Result<Packs, ApiError> {
    read_as(state, PACKS).await
}

/// The stickerpack `id` of `namespace`, with its stickers.
async fn pack(state: &AppState, namespace: &Namespace, id: &str) -> Result<Value, ApiError> {
    if namespace.first_party() {
        return first_party_pack(id).ok_or_else(|| no_pack(id));
    }
    third_party(state).await?.get(id).map(Pack::with_stickers).ok_or_else(|| no_pack(id))
}

/// A pack as listed: without its stickers.
fn listed(mut pack: Value) -> Value {
    if let Some(object) = pack.as_object_mut() {
        object.remove("stickers");
    }
    pack
}

async fn list_packs(
    State(state): State<AppState>,
    _caller: Caller,
    Query(namespace): Query<Namespace>,
) -> Result<Response, ApiError> {
    let packs: Vec<Value> = if namespace.first_party() {
        FIRST_PARTY_PACKS.iter().filter_map(|(id, _, _)| first_party_pack(id)).map(listed).collect()
    } else {
        third_party(&state).await?.packs.iter().map(Pack::view).collect()
    };
    Ok(reply(StatusCode::OK, json!({ "stickerpacks": packs })))
}

async fn show_pack(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    Query(namespace): Query<Namespace>,
) -> Result<Response, ApiError> {
    let pack = pack(&state, &namespace, &id).await?;
    Ok(reply(StatusCode::OK, json!({ "stickerpacks": [listed(pack)] })))
}

/// Changes the third-party packs with `update` (compare-and-set: every replica sees the same
/// packs), which may refuse; what `update` returned.
async fn change_packs<T: Send>(
    state: &AppState,
    update: impl Fn(&mut Packs) -> Result<T, ApiError> + Send + Sync,
) -> Result<T, ApiError> {
    let answer = std::sync::Mutex::new(None);
    change_as(state, PACKS, |mut packs: Packs| {
        let value = update(&mut packs)?;
        *answer.lock().expect("answer") = Some(value);
        Ok(packs)
    })
    .await?;
    let answer = answer.lock().expect("answer").take();
    Ok(answer.expect("set by the change that was kept"))
}

fn first_party_is_read_only(namespace: &Namespace) -> Result<(), ApiError> {
    if namespace.first_party() {
        return Err(Rejection::invalid(
            "namespace",
            "WhatsApp's own stickerpacks cannot be changed",
        )
        .into());
    }
    Ok(())
}

async fn create_pack(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Query(namespace): Query<Namespace>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    first_party_is_read_only(&namespace)?;
    let fields = pack_fields(&json!({}), &body)?;
    let id = change_packs(&state, |packs| Ok(packs.create(fields.clone()))).await?;
    tracing::info!(by = %admin.username, "stickerpack created");
    Ok(reply(StatusCode::CREATED, json!({ "stickerpacks": [{ "id": id }] })))
}

async fn update_pack(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    Query(namespace): Query<Namespace>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    first_party_is_read_only(&namespace)?;
    change_packs(&state, |packs| {
        let current = packs.get(&id).ok_or_else(|| no_pack(&id))?;
        let fields = pack_fields(&Value::Object(current.fields.clone()), &body)?;
        packs.update(&id, fields).map_err(|e| refused(e, &id, ""))
    })
    .await?;
    Ok(reply_empty(StatusCode::OK))
}

async fn delete_pack(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    Query(namespace): Query<Namespace>,
) -> Result<Response, ApiError> {
    first_party_is_read_only(&namespace)?;
    change_packs(&state, |packs| packs.delete(&id).map_err(|e| refused(e, &id, ""))).await?;
    Ok(reply_empty(StatusCode::OK))
}

async fn list_stickers(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    Query(namespace): Query<Namespace>,
) -> Result<Response, ApiError> {
    let pack = pack(&state, &namespace, &id).await?;
    Ok(reply(StatusCode::OK, json!({ "stickers": pack["stickers"] })))
}

async fn show_sticker(
    State(state): State<AppState>,
    _caller: Caller,
    Path((id, index)): Path<(String, String)>,
    Query(namespace): Query<Namespace>,
) -> Result<Response, ApiError> {
    let pack = pack(&state, &namespace, &id).await?;
    let sticker = sticker_at(&pack, &index).ok_or_else(|| no_sticker(&id, &index))?;
    Ok(reply(StatusCode::OK, json!({ "stickers": [sticker] })))
}

fn sticker_at(pack: &Value, index: &str) -> Option<Value> {
    let index: u64 = index.parse().ok()?;
    pack["stickers"].as_array()?.iter().find(|s| s["index"] == index).cloned()
}

/// The image must be an uploaded WebP image within the sticker size.
async fn check_image(state: &AppState, image: &str) -> Result<(), ApiError> {
    let media = state.store.media(image).await?;
    let invalid = |why: String| ApiError::from(Rejection::invalid("image_data_id", why));
    let media = media.ok_or_else(|| invalid(format!("'{image}' is not an uploaded media")))?;
    if media.mime_type != "image/webp" {
        return Err(invalid(format!("a sticker is a WebP image, not {}", media.mime_type)));
    }
    if media.size > MAX_STICKER_BYTES {
        return Err(invalid(format!("at most {MAX_STICKER_BYTES} bytes, got {}", media.size)));
    }
    Ok(())
}

async fn create_sticker(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    Query(namespace): Query<Namespace>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    first_party_is_read_only(&namespace)?;
    let (image, emojis) = sticker_fields(&json!({}), &body)?;
    check_image(&state, &image).await?;
    let index = change_packs(&state, |packs| {
        packs.add_sticker(&id, image.clone(), emojis.clone()).map_err(|e| refused(e, &id, ""))
    })
    .await?;
    Ok(reply(StatusCode::CREATED, json!({ "stickers": [{ "index": index }] })))
}

async fn update_sticker(
    State(state): State<AppState>,
    _admin: Admin,
    Path((id, index)): Path<(String, String)>,
    Query(namespace): Query<Namespace>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    first_party_is_read_only(&namespace)?;
    let current = sticker_at(&pack(&state, &namespace, &id).await?, &index)
        .ok_or_else(|| no_sticker(&id, &index))?;
    let (image, emojis) = sticker_fields(&current, &body)?;
    check_image(&state, &image).await?;
    let number = index_of(&id, &index)?;
    change_packs(&state, |packs| {
        packs
            .update_sticker(&id, number, image.clone(), emojis.clone())
            .map_err(|e| refused(e, &id, &index))
    })
    .await?;
    Ok(reply_empty(StatusCode::OK))
}

async fn delete_sticker(
    State(state): State<AppState>,
    _admin: Admin,
    Path((id, index)): Path<(String, String)>,
    Query(namespace): Query<Namespace>,
) -> Result<Response, ApiError> {
    first_party_is_read_only(&namespace)?;
    change_packs(&state, |packs| {
        packs.get(&id).ok_or_else(|| no_pack(&id))?;
        let number = index_of(&id, &index)?;
        packs.delete_sticker(&id, number).map_err(|e| refused(e, &id, &index))
    })
    .await?;
    Ok(reply_empty(StatusCode::OK))
}
