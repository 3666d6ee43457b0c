//! `POST /v1/contacts`: which numbers are on WhatsApp, and their WhatsApp ids
//! (`onprem-api.md` section 4).
//!
//! Each well-formed number is looked up by the upstream ([`premise_upstream::Upstream`]), and
//! the result is cached in the store for 7 days as On-Premises did, shared by every replica;
//! `force_check` looks again and refreshes the cache. Numbers that are not phone numbers are
//! answered `invalid` without a lookup. Lookups answer at once, so `blocking` makes no
//! difference: `no_wait` callers get final answers rather than `processing`, which they must
//! handle anyway for numbers already cached.

use std::collections::HashMap;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use premise_store::ContactCheck;
use premise_wire::contacts::{ContactResult, ContactsRequest, PhoneNumber};
use serde_json::{Value, json};

use super::auth::Caller;
use super::body::JsonBody;
use super::reply::reply;
use super::{ApiError, AppState};

use premise_wire::contacts::CHECK_CACHE_SECS as CACHE_SECS;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/contacts", post(check))
}

/// 200 `{"contacts":[{"input","status","wa_id"?}]}`, in request order.
async fn check(
    State(state): State<AppState>,
    _caller: Caller,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let request = ContactsRequest::parse(&body)?;
    let now = state.clock.now_secs();
    let mut numbers: Vec<&PhoneNumber> =
        request.contacts.iter().filter_map(|c| c.number.as_ref().ok()).collect();
    numbers.sort();
    numbers.dedup();

    let mut known: HashMap<String, Option<String>> = HashMap::new();
    if !request.force_check && !numbers.is_empty() {
        let keys: Vec<String> = numbers.iter().map(|n| n.as_str().to_owned()).collect();
        for hit in state.store.contact_checks(&keys, now - CACHE_SECS).await? {
            known.insert(hit.number, hit.wa_id);
        }
    }
    let mut fresh = Vec::new();
    for number in numbers.into_iter().filter(|n| !known.contains_key(n.as_str())) {
        let wa_id = state.upstream.lookup_contact(number).await;
        fresh.push(ContactCheck { number: number.as_str().to_owned(), wa_id, checked_at: now });
    }
    if !fresh.is_empty() {
        state.store.record_contact_checks(&fresh, now - CACHE_SECS).await?;
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
            Err(_) => ContactResult::invalid(&contact.input),
        })
        .collect();
    Ok(reply(StatusCode::OK, json!({ "contacts": results })))
}
