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
    FIRST_PARTY, FIRST_PARTY_PACKS, MAX_STICKER_BYTES, MAX_STICKERS, first_party_pack, pack_fields,
    sticker_fields,
};
use premise_wire::{ErrorCode, Rejection};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Admin, Caller};
use super::body::JsonBody;
use super::documents::{change_with, read};
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

/// A pack as listed: its fields without its stickers.
fn pack_view(pack: &Value) -> Value {
    let mut view = pack.clone();
    if let Some(obj) = view.as_object_mut() {
        obj.remove("stickers");
        obj.remove("next_index");
    }
    view
}

fn no_pack(id: &str) -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFound, format!("no stickerpack '{id}'"))
}

fn no_sticker(id: &str, index: &str) -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFound, format!("no sticker {index} in stickerpack '{id}'"))
}

/// The stickerpack `id` of `namespace`, with its stickers.
async fn pack(state: &AppState, namespace: &Namespace, id: &str) -> Result<Value, ApiError> {
    if namespace.first_party() {
        return first_party_pack(id).ok_or_else(|| no_pack(id));
    }
    let packs = read(state, PACKS).await?.0;
    packs["packs"]
        .as_array()
        .and_then(|packs| packs.iter().find(|p| p["id"] == id).cloned())
        .ok_or_else(|| no_pack(id))
}

async fn list_packs(
    State(state): State<AppState>,
    _caller: Caller,
    Query(namespace): Query<Namespace>,
) -> Result<Response, ApiError> {
    let packs: Vec<Value> = if namespace.first_party() {
        FIRST_PARTY_PACKS.iter().filter_map(|(id, _, _)| first_party_pack(id)).collect()
    } else {
        read(&state, PACKS).await?.0["packs"].as_array().cloned().unwrap_or_default()
    };
    let packs: Vec<Value> = packs.iter().map(pack_view).collect();
    Ok(reply(StatusCode::OK, json!({ "stickerpacks": packs })))
}

async fn show_pack(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    Query(namespace): Query<Namespace>,
) -> Result<Response, ApiError> {
    let pack = pack(&state, &namespace, &id).await?;
    Ok(reply(StatusCode::OK, json!({ "stickerpacks": [pack_view(&pack)] })))
}

/// Changes the third-party packs with `update`, which may refuse.
async fn change_packs(
    state: &AppState,
    update: impl Fn(&mut Vec<Value>, &mut u64) -> Result<(), ApiError>,
) -> Result<Value, ApiError> {
    change_with(state, PACKS, |current| {
        let mut packs = current["packs"].as_array().cloned().unwrap_or_default();
        let mut next_id = current["next_id"].as_u64().unwrap_or(1);
        update(&mut packs, &mut next_id)?;
        Ok(json!({ "packs": packs, "next_id": next_id }))
    })
    .await
}

/// The third-party pack `id` among `packs`, to change.
fn pack_mut<'a>(packs: &'a mut [Value], id: &str) -> Result<&'a mut Value, ApiError> {
    packs.iter_mut().find(|p| p["id"] == id).ok_or_else(|| no_pack(id))
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
    let saved = change_packs(&state, |packs, next_id| {
        let mut pack = fields.clone();
        pack.insert("id".into(), json!(next_id.to_string()));
        pack.insert("stickers".into(), json!([]));
        *next_id += 1;
        packs.push(Value::Object(pack));
        Ok(())
    })
    .await?;
    let id = saved["packs"].as_array().and_then(|p| p.last()).map(|p| p["id"].clone());
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
    change_packs(&state, |packs, _| {
        let pack = pack_mut(packs, &id)?;
        let fields = pack_fields(&pack_view(pack), &body)?;
        for (key, value) in fields {
            pack[key] = value;
        }
        Ok(())
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
    change_packs(&state, |packs, _| {
        let before = packs.len();
        packs.retain(|p| p["id"] != id.as_str());
        if packs.len() == before { Err(no_pack(&id)) } else { Ok(()) }
    })
    .await?;
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
    let saved = change_packs(&state, |packs, _| {
        let pack = pack_mut(packs, &id)?;
        let stickers = pack["stickers"].as_array().cloned().unwrap_or_default();
        if stickers.len() >= MAX_STICKERS {
            return Err(
                Rejection::invalid("stickers", format!("at most {MAX_STICKERS} a pack")).into()
            );
        }
        let index = pack["next_index"].as_u64().unwrap_or(0);
        let mut stickers = stickers;
        stickers.push(json!({ "index": index, "image_data_id": image, "emojis": emojis }));
        pack["stickers"] = json!(stickers);
        pack["next_index"] = json!(index + 1);
        Ok(())
    })
    .await?;
    let index = saved["packs"]
        .as_array()
        .and_then(|packs| packs.iter().find(|p| p["id"] == id.as_str()))
        .map(|p| p["next_index"].as_u64().unwrap_or(1) - 1);
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
    change_packs(&state, |packs, _| {
        let pack = pack_mut(packs, &id)?;
        let stickers = pack["stickers"].as_array_mut().ok_or_else(|| no_sticker(&id, &index))?;
        let sticker = stickers
            .iter_mut()
            .find(|s| s["index"].as_u64() == index.parse().ok())
            .ok_or_else(|| no_sticker(&id, &index))?;
        sticker["image_data_id"] = json!(image);
        sticker["emojis"] = json!(emojis);
        Ok(())
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
    change_packs(&state, |packs, _| {
        let pack = pack_mut(packs, &id)?;
        let stickers = pack["stickers"].as_array_mut().ok_or_else(|| no_sticker(&id, &index))?;
        let before = stickers.len();
        let wanted: Option<u64> = index.parse().ok();
        stickers.retain(|s| wanted.is_none() || s["index"].as_u64() != wanted);
        if stickers.len() == before { Err(no_sticker(&id, &index)) } else { Ok(()) }
    })
    .await?;
    Ok(reply_empty(StatusCode::OK))
}
