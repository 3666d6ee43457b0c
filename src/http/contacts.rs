//! `POST /v1/contacts`: which numbers are on WhatsApp, and their WhatsApp ids
//! (`docs/onprem-api.md` section 4).
//!
//! Each well-formed number is looked up by the upstream ([`premise_upstream::Upstream`]), and
//! the result is cached in the store for 7 days as On-Premises did, shared by every replica;
//! `force_check` looks again and refreshes the cache. Numbers that are not phone numbers are
//! answered `invalid` without a lookup, except business-scoped user ids (`US.1349…`, the
//! only id Meta gives for a customer with a username), answered `valid` as themselves. Lookups
//! answer at once, so `blocking` makes no difference: `no_wait` callers get final answers rather
//! than `processing`, which they must handle anyway for numbers already cached.
//!
//! `GET /v1/contacts/{wa_id}/identity` answers the contact's identity hash,
//! `{"identity":[{"hash","created_at"}]}`, and `PUT` `{"hash"}` acknowledges it (On-Premises
//! held messages to a contact whose identity changed until then, with
//! `identity.enable_identity_key_check`). Identities never change in the sandbox, nor can the
//! Cloud API tell them: each contact's hash is derived from its WhatsApp id, first seen when
//! first asked for; its acknowledgement is kept in the store.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use premise_store::ContactCheck;
use premise_wire::contacts::{ContactResult, ContactsRequest, PhoneNumber};
use premise_wire::fields::{object, text};
use premise_wire::messages::UserId;
use premise_wire::{Rejection, WaId};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::auth::Caller;
use super::body::JsonBody;
use super::documents::{change, change_with, read};
use super::reply::{reply, reply_empty};
use super::{ApiError, AppState};

use premise_wire::contacts::CHECK_CACHE_SECS;

/// How long a contact check is reused.
const CACHE_FOR: std::time::Duration =
    std::time::Duration::from_secs(CHECK_CACHE_SECS.unsigned_abs());

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/contacts", post(check))
        .route("/v1/contacts/{wa_id}/identity", get(identity).put(acknowledge_identity))
}

/// 200 `{"contacts":[{"input","status","wa_id"?}]}`, in request order.
async fn check(
    State(state): State<AppState>,
    _caller: Caller,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let request = ContactsRequest::parse(&body)?;
    let now = state.clock.now();
    let fresh_after = now.minus(CACHE_FOR);
    let mut numbers: Vec<&PhoneNumber> =
        request.contacts.iter().filter_map(|c| c.number.as_ref().ok()).collect();
    numbers.sort();
    numbers.dedup();

    let mut known: HashMap<String, Option<String>> = HashMap::new();
    if !request.force_check && !numbers.is_empty() {
        let keys: Vec<String> = numbers.iter().map(|n| n.as_str().to_owned()).collect();
        for hit in state.store.contact_checks(&keys, fresh_after).await? {
            known.insert(hit.number, hit.wa_id);
        }
    }
    let mut fresh = Vec::new();
    for number in numbers.into_iter().filter(|n| !known.contains_key(n.as_str())) {
        let wa_id = state.upstream.lookup_contact(number).await;
        fresh.push(ContactCheck { number: number.as_str().to_owned(), wa_id, checked_at: now });
    }
    if !fresh.is_empty() {
        state.store.record_contact_checks(&fresh, fresh_after).await?;
        known.extend(fresh.into_iter().map(|c| (c.number, c.wa_id)));
    }

    let results: Vec<ContactResult> = request
        .contacts
        .iter()
        .map(|contact| match &contact.number {
            Ok(number) => match known.get(number.as_str()) {
                Some(Some(wa_id)) => ContactResult::valid(&contact.input, wa_id),
                _ => ContactResult::invalid(&contact.input),
            },
            // A business-scoped user id is Meta's own id of a WhatsApp user of this business
            // (it is given for no one else): valid, as itself, with nothing to look up.
            Err(_) => match UserId::parse("contacts", &contact.input) {
                Ok(user) => ContactResult::valid(&contact.input, user.as_str()),
                Err(_) => ContactResult::invalid(&contact.input),
            },
        })
        .collect();
    Ok(reply(StatusCode::OK, json!({ "contacts": results })))
}

/// The identity document of a contact: its hash, when first seen, and what was acknowledged.
async fn identity_of(state: &AppState, raw: &str) -> Result<(String, Value), ApiError> {
    let wa_id = WaId::parse("wa_id", raw)?;
    let hash = {
        let digest = Sha256::digest(format!("premise identity:{}", wa_id.as_str()));
        base64::engine::general_purpose::STANDARD.encode(&digest[..8])
    };
    let name = format!("contact.identity.{}", wa_id.as_str());
    // Written once, when first asked for; read after that.
    let (known, _) = read(state, &name).await?;
    if known.get("created_at").is_some() {
        return Ok((name, known));
    }
    let now = state.clock.now_secs();
    let doc = change(state, &name, |current| {
        let mut doc = current.clone();
        if doc.get("created_at").is_none() {
            doc = json!({ "hash": hash, "created_at": now });
        }
        Ok(doc)
    })
    .await?;
    Ok((name, doc))
}

async fn identity(
    State(state): State<AppState>,
    _caller: Caller,
    Path(wa_id): Path<String>,
) -> Result<Response, ApiError> {
    let (_, doc) = identity_of(&state, &wa_id).await?;
    Ok(reply(
        StatusCode::OK,
        json!({ "identity": [{ "hash": doc["hash"], "created_at": doc["created_at"] }] }),
    ))
}

async fn acknowledge_identity(
    State(state): State<AppState>,
    _caller: Caller,
    Path(wa_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let hash = text(object("identity", &body)?, "hash", "hash", 1, 128)?;
    let (name, _) = identity_of(&state, &wa_id).await?;
    let now = state.clock.now_secs();
    change_with(&state, &name, |current| {
        if current["hash"] != hash.as_str() {
            return Err(ApiError::from(Rejection::invalid(
                "hash",
                "not the contact's current identity hash (GET it first)",
            )));
        }
        let mut doc = current.clone();
        doc["acknowledged_at"] = json!(now);
        Ok(doc)
    })
    .await?;
    Ok(reply_empty(StatusCode::OK))
}
