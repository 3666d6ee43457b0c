//! Webhooks as Meta sends them: `{"object":"whatsapp_business_account","entry":[{"id",
//! "changes":[{"field":"messages","value":{...}}]}]}`, signed with the app secret
//! (`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`), checked against the
//! description's `WebhookPayload` before they leave. Statuses of accepted sends can be sent by
//! themselves ([`AutoStatuses`]): batched, in order or reversed, once or twice, and posted again
//! until answered 200, as Meta redelivers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{PHONE_NUMBER_ID, schema};

/// The business account's id in every webhook.
pub const WABA_ID: &str = "419561257915477";
pub const DISPLAY_PHONE_NUMBER: &str = "15550100000";

/// What the fake sends by itself for every send it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoStatuses {
    /// In lifecycle order, e.g. `["sent", "delivered", "read"]`; empty: none.
    pub statuses: Vec<&'static str>,
    /// After the acceptance, before the first is sent.
    pub delay: Duration,
    /// Statuses per webhook at most.
    pub batch: usize,
    /// Each batch's statuses in reverse order (Cloud does not promise order).
    pub reversed: bool,
    /// Each batch posted twice (Meta may deliver a webhook more than once).
    pub twice: bool,
}

impl AutoStatuses {
    pub fn none() -> Self {
        Self {
            statuses: Vec::new(),
            delay: Duration::ZERO,
            batch: 1,
            reversed: false,
            twice: false,
        }
    }

    /// `sent`, `delivered` and `read` for every accepted send, soon after.
    pub fn lifecycle() -> Self {
        Self {
            statuses: vec!["sent", "delivered", "read"],
            delay: Duration::from_millis(20),
            batch: 100,
            ..Self::none()
        }
    }
}

/// Posts signed webhooks to Premise.
#[derive(Debug)]
pub struct Sender {
    secret: Mutex<Vec<u8>>,
    http: reqwest::Client,
    target: Mutex<Option<(String, AutoStatuses)>>,
    queue: Mutex<Option<mpsc::UnboundedSender<(Instant, Value)>>>,
    /// Webhook POSTs answered 200, and those answered otherwise (then posted again).
    pub delivered: Arc<AtomicU64>,
    pub refused: Arc<AtomicU64>,
    /// Statuses queued to be sent by themselves, and those whose webhooks are done.
    queued: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
}

impl Sender {
    pub(super) fn new(app_secret: &str) -> Self {
        Self {
            secret: Mutex::new(app_secret.as_bytes().to_vec()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
            target: Mutex::new(None),
            queue: Mutex::new(None),
            delivered: Arc::default(),
            refused: Arc::default(),
            queued: Arc::default(),
            done: Arc::default(),
        }
    }

    /// Signs with another secret from now on (to test that Premise refuses it).
    pub fn sign_with(&self, app_secret: &str) {
        *self.secret.lock().expect("secret") = app_secret.as_bytes().to_vec();
    }

    pub(super) fn configure(&self, url: &str, auto: AutoStatuses) {
        *self.target.lock().expect("target") = Some((url.to_owned(), auto.clone()));
        let mut queue = self.queue.lock().expect("queue");
        if queue.is_none() && !auto.statuses.is_empty() {
            let (sender, receiver) = mpsc::unbounded_channel();
            *queue = Some(sender);
            tokio::spawn(post_automatically(
                receiver,
                Poster {
                    url: url.to_owned(),
                    auto,
                    http: self.http.clone(),
                    secret: self.secret.lock().expect("secret").clone(),
                    delivered: self.delivered.clone(),
                    refused: self.refused.clone(),
                    done: self.done.clone(),
                },
            ));
        }
    }

    /// A send was accepted: its statuses, if the fake sends them by itself.
    pub(super) fn accepted(&self, wamid: &str, to: &str) {
        let Some((_, auto)) = self.target.lock().expect("target").clone() else { return };
        let Some(queue) = self.queue.lock().expect("queue").clone() else { return };
        let due = Instant::now() + auto.delay;
        let now = unix_now();
        for status in auto.statuses {
            self.queued.fetch_add(1, Ordering::Relaxed);
            let _ = queue.send((due, status_entry(wamid, status, to, now)));
        }
    }

    /// Whether every status it sends by itself has been posted (each copy answered 200, or
    /// given up on).
    pub fn idle(&self) -> bool {
        self.done.load(Ordering::Relaxed) == self.queued.load(Ordering::Relaxed)
    }

    /// The signature header's value for `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        let secret = self.secret.lock().expect("secret").clone();
        signature(&secret, body)
    }

    /// Posts `payload` (checked against the description first), signed: the status answered.
    pub async fn post(&self, payload: &Value) -> u16 {
        let errors = schema::schemas().check_webhook(payload);
        assert!(
            errors.is_empty(),
            "the fake was asked to send an invalid webhook: {errors:?}\n{payload}"
        );
        let body = payload.to_string().into_bytes();
        let signature = self.sign(&body);
        self.post_raw(body, Some(&signature)).await
    }

    /// Posts `body` with this signature header (or none): the status answered.
    pub async fn post_raw(&self, body: Vec<u8>, signature: Option<&str>) -> u16 {
        let url = self
            .target
            .lock()
            .expect("target")
            .as_ref()
            .map(|(u, _)| u.clone())
            .expect("send_webhooks_to first");
        let mut request = self.http.post(url).header("content-type", "application/json").body(body);
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        match request.send().await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        }
    }
}

/// Where and how the statuses sent by themselves go.
struct Poster {
    url: String,
    auto: AutoStatuses,
    http: reqwest::Client,
    secret: Vec<u8>,
    delivered: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
}

async fn post_automatically(mut queue: mpsc::UnboundedReceiver<(Instant, Value)>, poster: Poster) {
    let Poster { url, auto, http, secret, delivered, refused, done } = poster;
    while let Some((due, first)) = queue.recv().await {
        tokio::time::sleep_until(due).await;
        let mut batch = vec![first];
        while batch.len() < auto.batch.max(1) {
            match queue.try_recv() {
                Ok((due, entry)) => {
                    tokio::time::sleep_until(due).await;
                    batch.push(entry);
                }
                Err(_) => break,
            }
        }
        if auto.reversed {
            batch.reverse();
        }
        let body = statuses_payload(&batch).to_string().into_bytes();
        let signature = signature(&secret, &body);
        for _ in 0..if auto.twice { 2 } else { 1 } {
            // Posted until answered 200, as Meta redelivers (bounded: a test ends).
            for attempt in 0..600 {
                let sent = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", &signature)
                    .body(body.clone())
                    .send()
                    .await;
                if sent.is_ok_and(|r| r.status().as_u16() == 200) {
                    delivered.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                refused.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100 + 10 * attempt.min(90))).await;
            }
        }
        done.fetch_add(batch.len() as u64, Ordering::Relaxed);
    }
}

fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn envelope(value: &Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": WABA_ID, "changes": [{ "field": "messages", "value": value }] }],
    })
}

fn metadata() -> Value {
    json!({ "display_phone_number": DISPLAY_PHONE_NUMBER, "phone_number_id": PHONE_NUMBER_ID })
}

/// The business-scoped user id the fake gives the customer with phone number `wa_id`.
pub fn user_id_of(wa_id: &str) -> String {
    format!("US.B{wa_id}")
}

fn is_user_id(to: &str) -> bool {
    to.get(2..3) == Some(".")
}

/// A webhook carrying these `statuses[]` entries, with a `contacts` entry for each recipient of
/// a `sent`, `delivered` or `read` one, as Meta sends since business-scoped user ids (Dualhook's
/// "BSUID Webhook Changes": `wa_id` when the number may be shown, `user_id` always; none for
/// `failed`).
pub fn statuses_payload(statuses: &[Value]) -> Value {
    let mut contacts: Vec<Value> = Vec::new();
    for entry in statuses.iter().filter(|e| e["status"] != "failed") {
        let user_id = entry["recipient_user_id"].clone();
        if user_id.is_null() || contacts.iter().any(|c| c["user_id"] == user_id) {
            continue;
        }
        let mut contact = json!({ "user_id": user_id });
        if let Some(wa_id) = entry.get("recipient_id") {
            contact["wa_id"] = wa_id.clone();
        }
        contacts.push(contact);
    }
    let mut value =
        json!({ "messaging_product": "whatsapp", "metadata": metadata(), "statuses": statuses });
    if !contacts.is_empty() {
        value["contacts"] = Value::Array(contacts);
    }
    envelope(&value)
}

/// One `statuses[]` entry as Meta sends it in 2026: `recipient_id` the phone number (absent when
/// the send went to a business-scoped user id), `recipient_user_id` the customer's BSUID; `sent`
/// and `delivered` carry per-message pricing (`PMP`, no conversation: Meta's "Pricing updates"
/// of July 2025), here a free service reply.
pub fn status_entry(wamid: &str, status: &str, to: &str, timestamp: u64) -> Value {
    let mut entry = json!({
        "id": wamid,
        "status": status,
        "timestamp": timestamp.to_string(),
    });
    if is_user_id(to) {
        entry["recipient_user_id"] = json!(to);
    } else {
        entry["recipient_id"] = json!(to);
        entry["recipient_user_id"] = json!(user_id_of(to));
    }
    if status == "sent" || status == "delivered" {
        entry["pricing"] = json!({ "billable": false, "pricing_model": "PMP",
            "category": "service", "type": "free_customer_service" });
    }
    entry
}

/// The same under conversation-based pricing (`CBP`, before July 2025): `sent` and `delivered`
/// carry the conversation and pricing, and no business-scoped user id.
pub fn status_entry_cbp(wamid: &str, status: &str, to: &str, timestamp: u64) -> Value {
    let mut entry = json!({
        "id": wamid,
        "status": status,
        "timestamp": timestamp.to_string(),
        "recipient_id": to,
    });
    if status == "sent" || status == "delivered" {
        entry["conversation"] = json!({
            "id": format!("conversation-{to}"),
            "expiration_timestamp": (timestamp + 86_400).to_string(),
            "origin": { "type": "service" },
        });
        entry["pricing"] =
            json!({ "billable": true, "pricing_model": "CBP", "category": "service" });
    }
    entry
}

/// A `failed` entry with Cloud's error.
pub fn failed_entry(
    wamid: &str,
    to: &str,
    timestamp: u64,
    code: i64,
    title: &str,
    details: &str,
) -> Value {
    json!({
        "id": wamid,
        "status": "failed",
        "timestamp": timestamp.to_string(),
        "recipient_id": to,
        "errors": [{ "code": code, "title": title, "message": title, "error_data": { "details": details } }],
    })
}

/// A webhook carrying a customer's messages.
pub fn messages_payload(name: &str, wa_id: &str, messages: &[Value]) -> Value {
    envelope(&json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(),
        "contacts": [{ "profile": { "name": name }, "wa_id": wa_id }],
        "messages": messages,
    }))
}

/// A webhook carrying a username customer's messages, as Meta's "Business-scoped user IDs" page
/// shows it: the customer's number hidden, so `contacts[]` has `user_id` and
/// `profile.username` but no `wa_id`, and the messages no `from`.
pub fn username_payload(name: &str, username: &str, user_id: &str, messages: &[Value]) -> Value {
    let messages: Vec<Value> = messages
        .iter()
        .map(|m| {
            let mut m = m.clone();
            if let Some(m) = m.as_object_mut() {
                m.remove("from");
            }
            m
        })
        .collect();
    envelope(&json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(),
        "contacts": [{ "profile": { "name": name, "username": username }, "user_id": user_id }],
        "messages": messages,
    }))
}

/// A `user_id_update` webhook: Meta replaced a customer's business-scoped user id (they changed
/// number). The shape follows Dualhook's "BSUID Webhook Changes" list of the field, with the
/// previous and current ids under `user_id_update[].user_id` and the number when shown.
pub fn user_id_update_payload(previous: &str, current: &str, wa_id: Option<&str>) -> Value {
    let mut update = json!({
        "user_id": { "previous": previous, "current": current },
        "timestamp": unix_now().to_string(),
    });
    if let Some(wa_id) = wa_id {
        update["wa_id"] = json!(wa_id);
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": WABA_ID, "changes": [{ "field": "user_id_update", "value": {
            "messaging_product": "whatsapp",
            "metadata": metadata(),
            "user_id_update": [update],
        }}] }],
    })
}

pub fn text_message(from: &str, id: &str, timestamp: u64, body: &str) -> Value {
    json!({ "from": from, "id": id, "timestamp": timestamp.to_string(), "type": "text", "text": { "body": body } })
}

pub fn image_message(
    from: &str,
    id: &str,
    timestamp: u64,
    media_id: &str,
    mime_type: &str,
    sha256: &str,
    caption: &str,
) -> Value {
    json!({
        "from": from,
        "id": id,
        "timestamp": timestamp.to_string(),
        "type": "image",
        "image": { "caption": caption, "mime_type": mime_type, "sha256": sha256, "id": media_id },
    })
}
