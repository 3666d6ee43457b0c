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
    Billing, Conversation, ConversationOrigin, MessageStatus, Pricing, StatusError,
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
    /// The parts Premise could not map, kept as they came with the reason.
    pub unmapped: Vec<Unmapped>,
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
}

/// A customer's message: Cloud's message object and who sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerMessage {
    /// Cloud's id for it (`wamid....`): the id the integration sees, as On-Premises gave its
    /// own; marking it read sends Cloud's read receipt for this id.
    pub id: String,
    pub from: String,
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

/// Reads a webhook body, part by part (see the module's documentation). `Err` only when the
/// body is not JSON.
pub fn read(body: &[u8]) -> Result<Notification, String> {
    let payload: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
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
    let Some(value) = value.filter(|_| field == "messages") else {
        let why = format!("a change of field '{field}', which Premise does not map");
        notification.unmapped.push(Unmapped::new(change, why));
        return;
    };
    for status in value.get("statuses").and_then(Value::as_array).into_iter().flatten() {
        match read_status(status) {
            Ok(status) => notification.statuses.push(status),
            Err(why) => notification.unmapped.push(Unmapped::new(status, why)),
        }
    }
    let contacts = value.get("contacts").and_then(Value::as_array);
    for message in value.get("messages").and_then(Value::as_array).into_iter().flatten() {
        match read_message(message, contacts) {
            Ok(message) => notification.messages.push(message),
            Err(why) => {
                // With the contacts it came with: who wrote is there (a username customer's
                // business-scoped id), for whoever processes it again.
                let part = json!({ "message": message, "contacts": contacts });
                notification.unmapped.push(Unmapped::new(&part, why));
            }
        }
    }
}

fn text<'a>(object: &'a Value, key: &str) -> Result<&'a str, String> {
    object.get(key).and_then(Value::as_str).ok_or_else(|| format!("'{key}' missing in {object}"))
}

fn seconds(object: &Value) -> Result<i64, String> {
    let raw = object.get("timestamp").ok_or_else(|| format!("'timestamp' missing in {object}"))?;
    match raw {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
    .ok_or_else(|| format!("'timestamp' is not Unix seconds: {raw}"))
}

fn read_status(status: &Value) -> Result<CloudStatus, String> {
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
    Ok(CloudStatus {
        wamid: text(status, "id")?.to_owned(),
        status: state,
        at_ms: seconds(status)?.saturating_mul(1000),
        errors,
        billing: billing(status),
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

/// Conversation and pricing, when Cloud sends both.
fn billing(status: &Value) -> Option<Billing> {
    let conversation = status.get("conversation")?;
    let pricing = status.get("pricing")?;
    let origin = conversation.pointer("/origin/type").and_then(Value::as_str)?;
    Some(Billing {
        conversation: Conversation {
            id: conversation.get("id")?.as_str()?.to_owned(),
            expiration_timestamp: conversation.get("expiration_timestamp").and_then(|t| {
                t.as_str().map(str::to_owned).or_else(|| t.as_i64().map(|n| n.to_string()))
            }),
            origin: ConversationOrigin { kind: origin.to_owned() },
        },
        pricing: Pricing {
            billable: pricing.get("billable").and_then(Value::as_bool).unwrap_or(true),
            pricing_model: pricing.get("pricing_model").and_then(Value::as_str)?.to_owned(),
            category: pricing.get("category").and_then(Value::as_str).unwrap_or(origin).to_owned(),
        },
    })
}

fn read_message(message: &Value, contacts: Option<&Vec<Value>>) -> Result<CustomerMessage, String> {
    let Value::Object(object) = message else {
        return Err(format!("a message is not an object: {message}"));
    };
    let from = text(message, "from")?.to_owned();
    let profile_name = contacts
        .into_iter()
        .flatten()
        .find(|c| c.get("wa_id").and_then(Value::as_str) == Some(from.as_str()))
        .or_else(|| contacts.and_then(|c| c.first()))
        .and_then(|c| c.pointer("/profile/name")?.as_str().map(str::to_owned));
    Ok(CustomerMessage {
        id: text(message, "id")?.to_owned(),
        from,
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

    /// Cloud's id of the message this one replies to, if any.
    pub fn context_id(&self) -> Option<&str> {
        self.message.get("context")?.get("id")?.as_str()
    }

    /// The On-Premises `messages[0]` entry and the whole inbound webhook body. `media_id`:
    /// Premise's id for the downloaded media (replacing Cloud's); `context_id`: Premise's id
    /// of the message replied to, when it is one of Premise's.
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
        // What Cloud calls `unsupported`, On-Premises called `unknown`, with its errors.
        if kind == "unsupported" {
            message.remove("unsupported");
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
        if let (Some(id), Some(Value::Object(context))) = (context_id, message.get_mut("context")) {
            context.insert("id".to_owned(), json!(id));
        }
        message.insert("timestamp".to_owned(), json!(self.timestamp.to_string()));
        let message = Value::Object(message);
        let body = if kind == "system" && self.profile_name.is_none() {
            json!({ "messages": [message] })
        } else {
            let name = self.profile_name.as_deref().unwrap_or_default();
            json!({
                "contacts": [{ "profile": { "name": name }, "wa_id": self.from }],
                "messages": [message],
            })
        };
        (message, body)
    }
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
        assert_eq!(delivered.billing.as_ref().unwrap().conversation.origin.kind, "marketing");
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
        // A username customer (no 'from') beside a phone customer: one is read, one set aside.
        let mixed = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
            "field": "messages", "value": {"messaging_product": "whatsapp",
                "contacts": [{"profile": {"name": "Ann"}, "wa_id": "16315551234"},
                             {"profile": {"name": "Bo", "username": "bo"}, "user_id": "US.13491208655302741918"}],
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
}
