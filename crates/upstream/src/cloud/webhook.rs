//! What the Cloud API's webhooks carry, read into On-Premises terms. Pure: the HTTP front
//! checks the signature with [`signed`], reads the body with [`read`], then records each status
//! and customer's message.
//!
//! Each part is read on its own: a status, a message or a change Premise cannot map (a field
//! missing, a field of a kind Meta added since, a `field` Premise does not handle) is set aside
//! as [`Unmapped`] with the reason, and never stops the others. Only a body that is not JSON is
//! refused: Meta retries a refused delivery, then drops it with everything it carried.
//!
//! The envelope (`WebhookPayload` in Meta's OpenAPI): `{"object":"whatsapp_business_account",
//! "entry":[{"id","changes":[{"field":"messages","value":{"messaging_product","metadata",
//! "contacts":[...],"messages":[...],"statuses":[...]}}]}]}`.

use hmac::{Hmac, Mac};
use premise_wire::{
    Billing, Conversation, ConversationOrigin, MessageStatus, Pricing, StatusCustomer, StatusError,
};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::errors::status_error;

/// Whether `signature` (the `X-Hub-Signature-256` header, `sha256=<hex>`) is the HMAC-SHA256
/// of the raw `body` with the app secret, compared in constant time.
pub fn signed(app_secret: &[u8], body: &[u8], signature: Option<&str>) -> bool {
    let Some(hex) = signature.and_then(|s| s.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(app_secret) else { return false };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect()
}

/// What one webhook carries, in the order it carries it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notification {
    pub statuses: Vec<CloudStatus>,
    pub messages: Vec<CustomerMessage>,
    /// Customers whose business-scoped user id Meta replaced (`user_id_update`).
    pub user_id_updates: Vec<UserIdUpdate>,
    /// The parts Premise could not map, kept as they came with the reason.
    pub unmapped: Vec<Unmapped>,
}

/// Meta replaced a customer's business-scoped user id (it does when they change number): the
/// `user_id_update` webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdUpdate {
    pub previous: String,
    pub current: String,
    /// Their phone number, when Meta gave it.
    pub wa_id: Option<String>,
    /// Unix seconds, when given.
    pub timestamp: Option<i64>,
}

/// A part of a webhook Premise did not map: the part as Meta sent it, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unmapped {
    pub part: Value,
    pub why: String,
}

impl Unmapped {
    pub fn new(part: &Value, why: impl Into<String>) -> Self {
        Self { part: part.clone(), why: why.into() }
    }
}

/// A status of a message Premise sent, by Cloud's id for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudStatus {
    pub wamid: String,
    pub status: MessageStatus,
    pub at_ms: i64,
    /// A `failed` status's errors, with On-Premises codes.
    pub errors: Vec<StatusError>,
    pub billing: Option<Billing>,
    /// The customer's identifiers as the status gave them, passed to the integration.
    pub passed: StatusCustomer,
    /// Who the customer is, as far as the status says.
    pub customer: Customer,
}

/// A customer's message: Cloud's message object and who sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerMessage {
    /// Cloud's id for it (`wamid....`): the id the integration sees, as On-Premises gave its
    /// own; marking it read sends Cloud's read receipt for this id.
    pub id: String,
    /// Who wrote, as the integration sees them and replies to them: their phone number when
    /// Meta gives it, otherwise their business-scoped user id.
    pub from: String,
    /// Everything Meta said about who wrote.
    pub customer: Customer,
    pub profile_name: Option<String>,
    /// Unix seconds.
    pub timestamp: i64,
    /// The message object as Cloud sent it.
    pub message: Map<String, Value>,
}

/// Media a customer sent: under which key of the message, and Cloud's id for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudMedia {
    pub key: String,
    pub cloud_id: String,
    pub mime_type: Option<String>,
}

const MEDIA_KEYS: [&str; 5] = ["image", "audio", "video", "document", "sticker"];

/// The types of customers' messages Premise maps (Meta's messages webhook reference).
const INBOUND_TYPES: [&str; 14] = [
    "text",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
    "button",
    "interactive",
    "reaction",
    "order",
    "system",
    "unsupported",
];

/// Why a part of a webhook is not mapped: said for people, and kept with the part
/// ([`Unmapped::why`]) for an admin to read.
type Why = String;

/// A webhook body that is not JSON at all (anything else is read part by part).
#[derive(Debug, thiserror::Error)]
#[error("not JSON: {0}")]
pub struct NotJson(#[from] serde_json::Error);

/// Reads a webhook body, part by part (see the module's documentation). `Err` only when the
/// body is not JSON.
pub fn read(body: &[u8]) -> Result<Notification, NotJson> {
    let payload: Value = serde_json::from_slice(body)?;
    let mut notification = Notification::default();
    let Some(entries) = payload.get("entry").and_then(Value::as_array) else {
        let why = "no 'entry' array: not a WhatsApp Business Account webhook";
        notification.unmapped.push(Unmapped::new(&payload, why));
        return Ok(notification);
    };
    for entry in entries {
        let Some(changes) = entry.get("changes").and_then(Value::as_array) else {
            notification.unmapped.push(Unmapped::new(entry, "an entry without a 'changes' array"));
            continue;
        };
        for change in changes {
            read_change(change, &mut notification);
        }
    }
    Ok(notification)
}

fn read_change(change: &Value, notification: &mut Notification) {
    let field = change.get("field").and_then(Value::as_str).unwrap_or_default();
    let value = change.get("value").filter(|v| v.is_object());
    if field == "user_id_update"
        && let Some(value) = value
    {
        let entries = match value.get("user_id_update") {
            Some(Value::Array(entries)) => entries.iter().collect(),
            Some(entry) => vec![entry],
            None => vec![value],
        };
        for entry in entries {
            match read_user_id_update(entry) {
                Some(update) => notification.user_id_updates.push(update),
                None => notification.unmapped.push(Unmapped::new(
                    entry,
                    "a user_id_update without a previous and a current business-scoped user id",
                )),
            }
        }
        return;
    }
    let Some(value) = value.filter(|_| field == "messages") else {
        let why = format!("a change of field '{field}', which Premise does not map");
        notification.unmapped.push(Unmapped::new(change, why));
        return;
    };
    let contacts = value.get("contacts").and_then(Value::as_array);
    for status in value.get("statuses").and_then(Value::as_array).into_iter().flatten() {
        match read_status(status, contacts.map(Vec::as_slice).unwrap_or_default()) {
            Ok(status) => notification.statuses.push(status),
            Err(why) => notification.unmapped.push(Unmapped::new(status, why)),
        }
    }
    let messages = value.get("messages").and_then(Value::as_array);
    let all = messages.map(Vec::as_slice).unwrap_or_default();
    for message in all {
        match read_message(message, contacts.map(Vec::as_slice).unwrap_or_default(), all) {
            Ok(read) => {
                // A type Premise does not know reaches the integration as On-Premises'
                // `unknown`, and is kept whole to be processed again after an upgrade.
                if let Some(kind) = read.kind().filter(|k| !INBOUND_TYPES.contains(k)) {
                    let why = format!(
                        "a customer's message of type '{kind}', which Premise does not map (delivered as 'unknown')"
                    );
                    notification.unmapped.push(Unmapped::new(message, why));
                }
                notification.messages.push(read);
            }
            Err(why) => {
                // With the contacts it came with: who wrote is there (a username customer's
                // business-scoped id), for whoever processes it again.
                let part = json!({ "message": message, "contacts": contacts });
                notification.unmapped.push(Unmapped::new(&part, why));
            }
        }
    }
}

fn text<'a>(object: &'a Value, key: &str) -> Result<&'a str, Why> {
    object.get(key).and_then(Value::as_str).ok_or_else(|| format!("'{key}' missing in {object}"))
}

fn seconds(object: &Value) -> Result<i64, Why> {
    let raw = object.get("timestamp").ok_or_else(|| format!("'timestamp' missing in {object}"))?;
    match raw {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
    .ok_or_else(|| format!("'timestamp' is not Unix seconds: {raw}"))
}

fn read_status(status: &Value, contacts: &[Value]) -> Result<CloudStatus, Why> {
    let state = match text(status, "status")? {
        "sent" => MessageStatus::Sent,
        "delivered" => MessageStatus::Delivered,
        "read" => MessageStatus::Read,
        "failed" => MessageStatus::Failed,
        other => return Err(format!("unknown status '{other}'")),
    };
    let errors = status
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(cloud_error)
        .collect();
    let (passed, customer) = status_customer(status, contacts);
    Ok(CloudStatus {
        wamid: text(status, "id")?.to_owned(),
        status: state,
        at_ms: seconds(status)?.saturating_mul(1000),
        errors,
        billing: billing(status),
        passed,
        customer,
    })
}

/// A `user_id_update` entry. Meta's "Business-scoped user IDs" page and the partner pages show
/// it with different nestings (`user_id: {previous, current}`, `detail: {previous: {user_id},
/// current: {user_id}}`, `previous_user_id` beside `user_id`...): the first previous/current pair
/// of business-scoped ids found, at any depth, is taken, with the first `wa_id`.
fn read_user_id_update(entry: &Value) -> Option<UserIdUpdate> {
    const PAIRS: [(&str, &str); 5] = [
        ("previous", "current"),
        ("old", "new"),
        ("previous_user_id", "user_id"),
        ("previous_user_id", "current_user_id"),
        ("old_user_id", "new_user_id"),
    ];
    fn id(value: Option<&Value>) -> Option<String> {
        match value? {
            Value::String(s) if is_user_id(s) => Some(s.clone()),
            Value::Object(o) => id(o.get("user_id")),
            _ => None,
        }
    }
    fn pair(value: &Value, depth: u8) -> Option<(String, String)> {
        let Value::Object(object) = value else { return None };
        let found =
            PAIRS.iter().find_map(|(p, c)| Some((id(object.get(*p))?, id(object.get(*c))?)));
        found.or_else(|| {
            (depth < 4).then(|| object.values().find_map(|v| pair(v, depth + 1))).flatten()
        })
    }
    fn wa_id(value: &Value, depth: u8) -> Option<String> {
        let Value::Object(object) = value else { return None };
        match object.get("wa_id") {
            Some(Value::String(s)) if is_phone(s) => Some(s.clone()),
            _ => (depth < 4).then(|| object.values().find_map(|v| wa_id(v, depth + 1))).flatten(),
        }
    }
    let (previous, current) = pair(entry, 0)?;
    (previous != current).then(|| UserIdUpdate {
        previous,
        current,
        wa_id: wa_id(entry, 0),
        timestamp: seconds(entry).ok(),
    })
}

/// `{code, title, message, error_data: {details}}` as an On-Premises error.
fn cloud_error(error: &Value) -> StatusError {
    let code = error.get("code").and_then(Value::as_i64).unwrap_or(131000);
    let title = ["title", "message"]
        .iter()
        .find_map(|k| error.get(*k).and_then(Value::as_str))
        .unwrap_or("Unknown error")
        .to_owned();
    let details = error
        .pointer("/error_data/details")
        .or_else(|| error.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    status_error(code, title, details)
}

/// Pricing, and the conversation when Cloud sends one: under per-message pricing (`PMP`, since
/// July 2025) a status carries `pricing` {billable, pricing_model, category, type} and usually no
/// conversation; under `CBP` both. Categories and types pass as Meta names them.
fn billing(status: &Value) -> Option<Billing> {
    let pricing = status.get("pricing")?;
    let conversation = status.get("conversation").and_then(|conversation| {
        Some(Conversation {
            id: conversation.get("id")?.as_str()?.to_owned(),
            expiration_timestamp: conversation.get("expiration_timestamp").and_then(|t| {
                t.as_str().map(str::to_owned).or_else(|| t.as_i64().map(|n| n.to_string()))
            }),
            origin: ConversationOrigin {
                kind: conversation.pointer("/origin/type")?.as_str()?.to_owned(),
            },
        })
    });
    let origin = conversation.as_ref().map(|c| c.origin.kind.clone());
    let category = pricing.get("category").and_then(Value::as_str).map(str::to_owned);
    Some(Billing {
        pricing: Pricing {
            billable: pricing.get("billable").and_then(Value::as_bool).unwrap_or(true),
            pricing_model: pricing.get("pricing_model").and_then(Value::as_str)?.to_owned(),
            category: category.or(origin)?,
            kind: pricing.get("type").and_then(Value::as_str).map(str::to_owned),
        },
        conversation,
    })
}

/// The customer's identifiers a status carries (2026): on the status itself
/// (`recipient_user_id`, `recipient_parent_user_id`, and on some partners' pages `user_id`,
/// `parent_user_id`, `username`), and in the change's `contacts` beside it (Dualhook's "BSUID
/// Webhook Changes": `wa_id`, `user_id`, `parent_user_id`, `profile.username`; none for
/// `failed`). Returns what to pass to the integration and who the customer is.
fn status_customer(status: &Value, contacts: &[Value]) -> (StatusCustomer, Customer) {
    let get = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let recipient = get(status, "recipient_id");
    let recipient_user_id = get(status, "recipient_user_id");
    let contact = contacts
        .iter()
        .find(|c| {
            (recipient.is_some()
                && (get(c, "wa_id") == recipient || get(c, "user_id") == recipient))
                || (recipient_user_id.is_some() && get(c, "user_id") == recipient_user_id)
        })
        // The change's only contact, when the status names none (a `failed` one has none).
        .or_else(|| {
            let failed = status.get("status").and_then(Value::as_str) == Some("failed");
            contacts.first().filter(|_| contacts.len() == 1 && !failed)
        });
    let mut customer = Customer::default();
    customer.fill_from(status, RECIPIENT);
    customer.fill_from(status, PLAIN);
    if let Some(contact) = contact {
        customer.fill_from(contact, PLAIN);
    }
    if customer.wa_id.is_none() {
        customer.wa_id = recipient.clone().filter(|r| is_phone(r));
    }
    if customer.user_id.is_none() {
        customer.user_id = recipient.filter(|r| is_user_id(r));
    }
    customer.wa_id = customer.wa_id.filter(|w| is_phone(w));
    customer.user_id = customer.user_id.filter(|u| is_user_id(u));
    let passed = StatusCustomer {
        user_id: get(status, "user_id").or_else(|| contact.and_then(|c| get(c, "user_id"))),
        recipient_user_id,
        parent_user_id: get(status, "parent_user_id")
            .or_else(|| contact.and_then(|c| get(c, "parent_user_id"))),
        recipient_parent_user_id: get(status, "recipient_parent_user_id"),
        username: get(status, "username").or_else(|| {
            contact.and_then(|c| c.pointer("/profile/username")?.as_str().map(str::to_owned))
        }),
    };
    (passed, customer)
}

/// Who a customer is, as far as Meta said: any of their phone number (`wa_id`), business-scoped
/// user id, parent one, and username (a display name they may change; never a key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customer {
    pub wa_id: Option<String>,
    pub user_id: Option<String>,
    pub parent_user_id: Option<String>,
    pub username: Option<String>,
}

impl Customer {
    /// The key the integration knows them by: the phone number if known, else the BSUID.
    pub fn key(&self) -> Option<&str> {
        self.wa_id.as_deref().or(self.user_id.as_deref())
    }

    /// Fills what is still unknown from what an object carries under `keys` (its user id and
    /// parent user id keys: [`PLAIN`], [`FROM`], [`RECIPIENT`]), and its `wa_id`, `username`
    /// and `profile.username`.
    fn fill_from(&mut self, object: &Value, (user_id, parent): (&str, &str)) {
        let get = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
        self.user_id = self.user_id.take().or_else(|| get(user_id));
        self.parent_user_id = self.parent_user_id.take().or_else(|| get(parent));
        self.wa_id = self.wa_id.take().or_else(|| get("wa_id"));
        self.username = self.username.take().or_else(|| get("username")).or_else(|| {
            object.pointer("/profile/username").and_then(Value::as_str).map(str::to_owned)
        });
    }
}

/// The keys of a customer's user id and parent user id: in a contact (and on some partners'
/// statuses), beside a message's sender, and on a status for its recipient.
const PLAIN: (&str, &str) = ("user_id", "parent_user_id");
const FROM: (&str, &str) = ("from_user_id", "from_parent_user_id");
const RECIPIENT: (&str, &str) = ("recipient_user_id", "recipient_parent_user_id");

/// Whether `raw` is a WhatsApp id made of digits (a phone number), not a business-scoped id.
fn is_phone(raw: &str) -> bool {
    !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `raw` has a business-scoped user id's shape (`US.1349…`, `US.ENT.1181…`).
fn is_user_id(raw: &str) -> bool {
    premise_wire::messages::UserId::parse("user_id", raw).is_ok()
}

/// Who sent `message`, from what it and the change's `contacts` say. Meta documents several
/// shapes since usernames (its "Business-scoped user IDs" page; Dualhook's "BSUID Webhook
/// Changes"): `from` with the phone number and `from_user_id` beside it; no `from` at all for a
/// customer whose number is hidden, who is then known by `contacts[].user_id`; and, on some
/// partners' pages, the BSUID in `from`. All are read. A message without either identifier is
/// matched to the one contact no other message of the change claims.
fn sender(message: &Value, contacts: &[Value], all: &[Value]) -> Result<Customer, Why> {
    let raw_from = message.get("from").and_then(Value::as_str).unwrap_or_default();
    let mut customer = Customer::default();
    if is_phone(raw_from) {
        customer.wa_id = Some(raw_from.to_owned());
    } else if is_user_id(raw_from) {
        customer.user_id = Some(raw_from.to_owned());
    } else if !raw_from.is_empty() {
        return Err(format!(
            "the sender '{raw_from}' is neither a phone number nor a business-scoped user id"
        ));
    }
    customer.fill_from(message, FROM);
    customer.wa_id = customer.wa_id.filter(|w| is_phone(w));
    let claims = |m: &Value, c: &Value| {
        let of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let from = of(m, "from");
        let user = of(m, "from_user_id");
        (from.is_some() && (from == of(c, "wa_id") || from == of(c, "user_id")))
            || (user.is_some() && user == of(c, "user_id"))
    };
    let contact = contacts.iter().find(|c| claims(message, c)).or_else(|| {
        if customer.key().is_some() && contacts.len() > 1 {
            return None; // Named, but by none of these contacts.
        }
        let mut unclaimed = contacts
            .iter()
            .filter(|c| !all.iter().any(|m| !std::ptr::eq(m, message) && claims(m, c)));
        match (unclaimed.next(), unclaimed.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    });
    if let Some(contact) = contact {
        customer.fill_from(contact, PLAIN);
    }
    customer.wa_id = customer.wa_id.filter(|w| is_phone(w));
    customer.user_id = customer.user_id.filter(|u| is_user_id(u));
    if customer.key().is_none() {
        return Err("'from' missing, and no business-scoped user id ('from_user_id', \
            contacts[].user_id) names the sender"
            .to_owned());
    }
    Ok(customer)
}

fn read_message(
    message: &Value,
    contacts: &[Value],
    all: &[Value],
) -> Result<CustomerMessage, Why> {
    let Value::Object(object) = message else {
        return Err(format!("a message is not an object: {message}"));
    };
    let customer = sender(message, contacts, all)?;
    let from = customer.key().expect("a sender has a key").to_owned();
    let profile_name = contacts
        .iter()
        .find(|c| {
            let of = |k: &str| c.get(k).and_then(Value::as_str);
            (customer.wa_id.is_some() && of("wa_id") == customer.wa_id.as_deref())
                || (customer.user_id.is_some() && of("user_id") == customer.user_id.as_deref())
        })
        .or_else(|| contacts.first().filter(|_| contacts.len() == 1))
        .and_then(|c| c.pointer("/profile/name")?.as_str().map(str::to_owned));
    Ok(CustomerMessage {
        id: text(message, "id")?.to_owned(),
        from,
        customer,
        profile_name,
        timestamp: seconds(message)?,
        message: object.clone(),
    })
}

impl CustomerMessage {
    /// The media it carries, if any, to download from Cloud.
    pub fn media(&self) -> Option<CloudMedia> {
        let kind = self.message.get("type")?.as_str()?;
        if !MEDIA_KEYS.contains(&kind) {
            return None;
        }
        let media = self.message.get(kind)?;
        Some(CloudMedia {
            key: kind.to_owned(),
            cloud_id: media.get("id")?.as_str()?.to_owned(),
            mime_type: media.get("mime_type").and_then(Value::as_str).map(str::to_owned),
        })
    }

    /// The On-Premises `contacts[0]`: the profile name (and username), `wa_id` = the key the
    /// integration replies to (the phone number, or the BSUID when the number is hidden), and
    /// `user_id`, `parent_user_id` as Meta gave them.
    pub fn contact(&self) -> Value {
        let mut profile = json!({ "name": self.profile_name.as_deref().unwrap_or_default() });
        if let Some(username) = &self.customer.username {
            profile["username"] = json!(username);
        }
        let mut contact = json!({ "profile": profile, "wa_id": self.from });
        if let Some(user_id) = &self.customer.user_id {
            contact["user_id"] = json!(user_id);
        }
        if let Some(parent) = &self.customer.parent_user_id {
            contact["parent_user_id"] = json!(parent);
        }
        contact
    }

    /// The message's `type`.
    pub fn kind(&self) -> Option<&str> {
        self.message.get("type")?.as_str()
    }

    /// The new id a `system` message of a changed number names, if it is one.
    pub fn changed_to(&self) -> Option<String> {
        let system = self.message.get("system")?;
        let kind = system.get("type")?.as_str()?;
        if !matches!(kind, "user_changed_number" | "user_changed_user_id") {
            return None;
        }
        ["user_id", "wa_id"].iter().find_map(|k| system.get(*k)?.as_str().map(str::to_owned))
    }

    /// Cloud's id of the message this one replies to or reacts to, if any.
    pub fn context_id(&self) -> Option<&str> {
        let context = self.message.get("context").and_then(|c| c.get("id"));
        let reacted = self.message.get("reaction").and_then(|r| r.get("message_id"));
        context.or(reacted)?.as_str()
    }

    /// The On-Premises `messages[0]` entry and the whole inbound webhook body. `media_id`:
    /// Premise's id for the downloaded media (replacing Cloud's); `context_id`: Premise's id
    /// of the message replied or reacted to, when it is one of Premise's.
    pub fn on_premises(&self, media_id: Option<&str>, context_id: Option<&str>) -> (Value, Value) {
        let mut message = self.message.clone();
        let kind = message.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
        if let (Some(id), Some(Value::Object(media))) = (media_id, message.get_mut(&kind)) {
            media.insert("id".to_owned(), json!(id));
        }
        // A voice note is an `audio` with `voice: true` on Cloud, a `voice` on On-Premises.
        if kind == "audio"
            && message.get("audio").and_then(|a| a.get("voice")).and_then(Value::as_bool)
                == Some(true)
            && let Some(Value::Object(mut audio)) = message.remove("audio")
        {
            audio.remove("voice");
            message.insert("type".to_owned(), json!("voice"));
            message.insert("voice".to_owned(), Value::Object(audio));
        }
        // What Cloud calls `unsupported`, On-Premises called `unknown`, with its errors; so is
        // a type Meta added since (kept aside as not mapped too, see `read_change`).
        if kind == "unsupported" || !INBOUND_TYPES.contains(&kind.as_str()) {
            message.remove(&kind);
            message.insert("type".to_owned(), json!("unknown"));
            let errors: Vec<StatusError> = match message.get("errors").and_then(Value::as_array) {
                Some(errors) if !errors.is_empty() => errors.iter().map(cloud_error).collect(),
                _ => vec![status_error(
                    131051,
                    "Unknown message type".to_owned(),
                    Some("Message type is not currently supported".to_owned()),
                )],
            };
            message.insert("errors".to_owned(), json!(errors));
        }
        // A changed number: Cloud names the new id `wa_id` (a phone number) or `user_id` (a
        // BSUID, `user_changed_user_id`); On-Premises named it `new_wa_id`, of a
        // `user_changed_number`, which is what the integration knows.
        if kind == "system"
            && let Some(Value::Object(system)) = message.get_mut("system")
        {
            let kind = system.get("type").and_then(Value::as_str).unwrap_or_default();
            if matches!(kind, "user_changed_number" | "user_changed_user_id") {
                let new = ["wa_id", "user_id"]
                    .iter()
                    .find_map(|k| system.get(*k).and_then(Value::as_str).map(str::to_owned));
                if let Some(new) = new {
                    system.insert("new_wa_id".to_owned(), json!(new));
                }
                system.insert("type".to_owned(), json!("user_changed_number"));
            }
        }
        if let (Some(id), Some(Value::Object(context))) = (context_id, message.get_mut("context")) {
            context.insert("id".to_owned(), json!(id));
        } else if let (Some(id), Some(Value::Object(reaction))) =
            (context_id, message.get_mut("reaction"))
        {
            reaction.insert("message_id".to_owned(), json!(id));
        }
        message.insert("timestamp".to_owned(), json!(self.timestamp.to_string()));
        // Who wrote, by the key the integration replies to (a BSUID when the number is hidden).
        message.insert("from".to_owned(), json!(self.from));
        let message = Value::Object(message);
        let body = if kind == "system" && self.profile_name.is_none() {
            json!({ "messages": [message] })
        } else {
            json!({ "contacts": [self.contact()], "messages": [message] })
        };
        (message, body)
    }
}

/// The On-Premises inbound webhook telling the integration that a customer it knew as `from`
/// is now `to` (a changed number, as On-Premises sent it: a `system` message of type
/// `user_changed_number` with `new_wa_id`), naming both identifiers; `user_ids` are the
/// previous and current business-scoped user ids when Meta gave them. The message and the body.
pub fn changed_number(
    id: &str,
    from: &str,
    to: &str,
    user_ids: Option<(&str, &str)>,
    timestamp: i64,
) -> (Value, Value) {
    let (old, new) = if from == to { user_ids.unwrap_or((from, to)) } else { (from, to) };
    let mut system = json!({
        "body": format!("User {from} changed from {old} to {new}"),
        "new_wa_id": to,
        "type": "user_changed_number",
    });
    if let Some((previous, current)) = user_ids {
        system["previous_user_id"] = json!(previous);
        system["user_id"] = json!(current);
    }
    let message = json!({
        "from": from,
        "id": id,
        "system": system,
        "timestamp": timestamp.to_string(),
        "type": "system",
    });
    let body = json!({ "messages": [&message] });
    (message, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(value: &Value) -> Vec<u8> {
        json!({"object": "whatsapp_business_account", "entry": [{"id": "419561257915477",
            "changes": [{"field": "messages", "value": value}]}]})
        .to_string()
        .into_bytes()
    }

    /// A `failed` status of a send by BSUID: no `contacts`, no `recipient_id`; mapped by its id.
    /// And a PMP status: pricing with its `type`, no conversation, the 2026 identifiers passed.
    #[test]
    fn statuses_without_a_number_map_by_their_id() {
        let body = envelope(&json!({"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"user_id": "US.7", "profile": {"username": "cy"}}],
            "statuses": [
                {"id": "wamid.F", "status": "failed", "timestamp": "1750000000",
                 "errors": [{"code": 131026, "title": "Message undeliverable"}]},
                {"id": "wamid.D", "status": "delivered", "timestamp": "1750000001",
                 "recipient_user_id": "US.7", "recipient_parent_user_id": "US.ENT.1",
                 "pricing": {"billable": true, "pricing_model": "PMP", "category": "marketing",
                     "type": "regular"}}]}));
        let notification = read(&body).unwrap();
        assert!(notification.unmapped.is_empty(), "{:?}", notification.unmapped);
        let [failed, delivered] = &notification.statuses[..] else { panic!() };
        assert_eq!((failed.wamid.as_str(), failed.errors[0].code), ("wamid.F", 1026));
        let billing = delivered.billing.as_ref().unwrap();
        assert_eq!(billing.conversation, None);
        assert_eq!(
            (billing.pricing.pricing_model.as_str(), billing.pricing.category.as_str()),
            ("PMP", "marketing")
        );
        assert_eq!(billing.pricing.kind.as_deref(), Some("regular"));
        assert_eq!(delivered.passed.recipient_user_id.as_deref(), Some("US.7"));
        assert_eq!(delivered.passed.recipient_parent_user_id.as_deref(), Some("US.ENT.1"));
        assert_eq!(delivered.passed.username.as_deref(), Some("cy"));
        assert_eq!(delivered.customer.user_id.as_deref(), Some("US.7"));
    }

    #[test]
    fn checks_signatures() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"app-secret").unwrap();
        mac.update(body);
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert!(signed(b"app-secret", body, Some(&format!("sha256={hex}"))));
        assert!(!signed(b"other-secret", body, Some(&format!("sha256={hex}"))));
        assert!(!signed(b"app-secret", b"{}", Some(&format!("sha256={hex}"))));
        assert!(!signed(b"app-secret", body, None));
        assert!(!signed(b"app-secret", body, Some(&hex)));
        assert!(!signed(b"app-secret", body, Some("sha256=zz")));
    }

    #[test]
    fn reads_statuses_with_mapped_errors_and_billing() {
        let body = envelope(&json!({"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "statuses": [
                {"id": "wamid.A", "status": "delivered", "timestamp": "1750000000",
                 "recipient_id": "16505551234",
                 "conversation": {"id": "c1", "expiration_timestamp": "1750086400",
                     "origin": {"type": "marketing"}},
                 "pricing": {"billable": true, "pricing_model": "CBP", "category": "marketing"}},
                {"id": "wamid.B", "status": "failed", "timestamp": "1750000001",
                 "recipient_id": "16505551234",
                 "errors": [{"code": 131026, "title": "Message undeliverable",
                     "message": "Message undeliverable",
                     "error_data": {"details": "Message Undeliverable."}}]}]}));
        let notification = read(&body).unwrap();
        let [delivered, failed] = &notification.statuses[..] else { panic!() };
        assert_eq!(
            (delivered.status, delivered.at_ms),
            (MessageStatus::Delivered, 1_750_000_000_000)
        );
        let billing = delivered.billing.as_ref().unwrap();
        assert_eq!(billing.conversation.as_ref().unwrap().origin.kind, "marketing");
        assert_eq!(failed.errors[0].code, 1026);
        assert_eq!(failed.errors[0].details.as_deref(), Some("Message Undeliverable."));
    }

    #[test]
    fn customers_messages_become_on_premises_inbound_webhooks() {
        let body = envelope(&json!({"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
            "messages": [
                {"from": "16505551234", "id": "wamid.IMG", "timestamp": "1750000000", "type": "image",
                 "context": {"from": "15550783881", "id": "wamid.OURS"},
                 "image": {"caption": "look", "mime_type": "image/jpeg", "sha256": "abc", "id": "8877"}},
                {"from": "16505551234", "id": "wamid.VOICE", "timestamp": "1750000001", "type": "audio",
                 "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": "def", "id": "9988", "voice": true}},
                {"from": "16505551234", "id": "wamid.NEW", "timestamp": "1750000002", "type": "unsupported",
                 "unsupported": {"type": "edit"},
                 "errors": [{"code": 131051, "title": "Message type unknown",
                     "message": "Message type unknown",
                     "error_data": {"details": "Message type is currently not supported."}}]}]}));
        let notification = read(&body).unwrap();
        let [image, voice, unknown] = &notification.messages[..] else { panic!() };
        assert_eq!(
            image.media(),
            Some(CloudMedia {
                key: "image".into(),
                cloud_id: "8877".into(),
                mime_type: Some("image/jpeg".into())
            })
        );
        assert_eq!(image.context_id(), Some("wamid.OURS"));
        let (message, webhook) = image.on_premises(Some("premise-media-1"), Some("gBEG1"));
        assert_eq!(message["image"]["id"], "premise-media-1");
        assert_eq!(message["context"]["id"], "gBEG1");
        assert_eq!(
            webhook["contacts"][0],
            json!({"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"})
        );
        assert_eq!(webhook["messages"][0], message);
        let (message, _) = voice.on_premises(Some("premise-media-2"), None);
        assert_eq!(message["type"], "voice");
        assert_eq!(
            message["voice"],
            json!({"mime_type": "audio/ogg; codecs=opus", "sha256": "def", "id": "premise-media-2"})
        );
        let (message, _) = unknown.on_premises(None, None);
        assert_eq!(message["type"], "unknown");
        assert_eq!(message["errors"][0]["code"], 501);
        assert_eq!(message.get("unsupported"), None);
    }

    #[test]
    fn refuses_only_what_is_not_json_and_sets_aside_what_it_cannot_map() {
        assert!(read(b"not json").is_err());
        let page = read(b"{\"object\":\"page\"}").unwrap();
        assert_eq!(page.unmapped.len(), 1, "kept whole, with the reason");
        let other_field = json!({"object": "whatsapp_business_account", "entry": [{"id": "1",
            "changes": [{"field": "message_template_status_update", "value": {"event": "APPROVED"}}]}]});
        let read_other = read(other_field.to_string().as_bytes()).unwrap();
        assert!(read_other.unmapped[0].why.contains("message_template_status_update"));
        // A type Meta added since: delivered as `unknown`, and kept with its reason.
        let edited = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
            "field": "messages", "value": {"messaging_product": "whatsapp",
                "contacts": [{"profile": {"name": "Ann"}, "wa_id": "16315551234"}],
                "messages": [{"from": "16315551234", "id": "wamid.E", "timestamp": "1",
                    "type": "edit", "edit": {"text": "b"}}]}}]}]});
        let read_edit = read(edited.to_string().as_bytes()).unwrap();
        assert!(read_edit.unmapped[0].why.contains("'edit'"), "{:?}", read_edit.unmapped);
        let (message, _) = read_edit.messages[0].on_premises(None, None);
        assert_eq!((message["type"].as_str(), message.get("edit")), (Some("unknown"), None));
        assert_eq!(message["errors"][0]["code"], 501);
        // A message that names no sender at all, beside one that does: one read, one set aside.
        let mixed = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
            "field": "messages", "value": {"messaging_product": "whatsapp",
                "contacts": [{"profile": {"name": "Ann"}, "wa_id": "16315551234"}],
                "messages": [
                    {"from": "16315551234", "id": "wamid.A", "timestamp": "1", "type": "text", "text": {"body": "a"}},
                    {"id": "wamid.B", "timestamp": "1", "type": "text", "text": {"body": "b"}}]}}]}]});
        let both = read(mixed.to_string().as_bytes()).unwrap();
        assert_eq!(both.messages.len(), 1);
        assert_eq!(both.messages[0].id, "wamid.A");
        assert_eq!(both.unmapped.len(), 1);
        assert!(both.unmapped[0].why.contains("'from' missing"), "{:?}", both.unmapped);
        assert_eq!(both.unmapped[0].part["message"]["id"], "wamid.B");
    }

    /// The shapes of Meta's "Business-scoped user IDs" page (May 2026) and Dualhook's "BSUID
    /// Webhook Changes": a username customer with no `from`, known by `contacts[].user_id`; a
    /// phone customer who also has a BSUID (`from_user_id`); a BSUID in `from`.
    #[test]
    fn customers_are_known_by_phone_number_or_business_scoped_user_id() {
        let body = envelope(&json!({"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [
                {"profile": {"name": "Ann"}, "wa_id": "16315551234", "user_id": "US.1111"},
                {"profile": {"name": "Bo", "username": "bo.writes"}, "user_id": "US.13491208655302741918",
                 "parent_user_id": "US.ENT.11815799212886844830"}],
            "messages": [
                {"from": "16315551234", "from_user_id": "US.1111", "id": "wamid.A", "timestamp": "1",
                 "type": "text", "text": {"body": "a"}},
                {"id": "wamid.B", "timestamp": "2", "type": "text", "text": {"body": "b"}},
                {"from": "GB.77", "id": "wamid.C", "timestamp": "3", "type": "text", "text": {"body": "c"}}]}));
        let notification = read(&body).unwrap();
        assert!(notification.unmapped.is_empty(), "{:?}", notification.unmapped);
        let [ann, bo, gb] = &notification.messages[..] else { panic!() };
        assert_eq!(
            (ann.from.as_str(), ann.customer.user_id.as_deref()),
            ("16315551234", Some("US.1111"))
        );
        assert_eq!(
            ann.contact(),
            json!({"profile": {"name": "Ann"}, "wa_id": "16315551234", "user_id": "US.1111"})
        );
        assert_eq!(bo.from, "US.13491208655302741918");
        let (message, webhook) = bo.on_premises(None, None);
        assert_eq!(message["from"], "US.13491208655302741918");
        assert_eq!(
            webhook["contacts"][0],
            json!({"profile": {"name": "Bo", "username": "bo.writes"},
                "wa_id": "US.13491208655302741918", "user_id": "US.13491208655302741918",
                "parent_user_id": "US.ENT.11815799212886844830"})
        );
        assert_eq!((gb.from.as_str(), gb.customer.wa_id.as_deref()), ("GB.77", None));
    }
}
