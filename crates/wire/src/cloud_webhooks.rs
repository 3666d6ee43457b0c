//! Webhooks in the Cloud API's form (`webhooks.format = "cloud"`), built from the On-Premises
//! bodies Premise keeps in its outbox: `{"object":"whatsapp_business_account","entry":[{"id",
//! "changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":
//! {"display_phone_number","phone_number_id"},"statuses"|"contacts"+"messages":[...]}}]}]}`,
//! as Meta's description of the API has them (`WebhookPayload`).

use serde_json::{Map, Value, json};

use crate::cloud_codes::cloud_code;

/// Who the webhooks are about: the business account and its phone number.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CloudIdentity {
    /// The WhatsApp Business Account id (`entry[].id`).
    pub business_account_id: String,
    pub phone_number_id: String,
    /// The number as WhatsApp shows it, digits (`metadata.display_phone_number`).
    pub display_phone_number: String,
}

impl CloudIdentity {
    fn envelope(&self, value: Map<String, Value>) -> Value {
        let mut value = value;
        value.insert("messaging_product".into(), json!("whatsapp"));
        value.insert(
            "metadata".into(),
            json!({
                "display_phone_number": self.display_phone_number,
                "phone_number_id": self.phone_number_id,
            }),
        );
        json!({
            "object": "whatsapp_business_account",
            "entry": [{
                "id": self.business_account_id,
                "changes": [{ "field": "messages", "value": value }],
            }],
        })
    }

    /// A webhook carrying these On-Premises `statuses[]` entries.
    pub fn statuses(&self, entries: &[Value]) -> Value {
        let statuses: Vec<Value> = entries.iter().map(status).collect();
        let mut value = Map::new();
        value.insert("statuses".into(), Value::Array(statuses));
        self.envelope(value)
    }

    /// A webhook carrying an On-Premises inbound webhook's contacts and messages.
    pub fn inbound(&self, body: &Value) -> Value {
        let mut value = Map::new();
        if let Some(Value::Array(contacts)) =
            body.get("contacts").filter(|c| c.as_array().is_some_and(|a| !a.is_empty()))
        {
            let contacts: Vec<Value> = contacts.iter().map(contact).collect();
            value.insert("contacts".into(), Value::Array(contacts));
        }
        let messages: Vec<Value> = body
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(message)
            .collect();
        value.insert("messages".into(), Value::Array(messages));
        self.envelope(value)
    }
}

/// Whether `id` is a phone number (digits), not a business-scoped user id.
fn is_phone(id: &Value) -> bool {
    id.as_str().is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
}

/// A customer as Meta shows them since business-scoped user ids: `wa_id` only when it is their
/// number (Premise puts a hidden number's customer's BSUID there, which is `user_id` on Cloud).
fn contact(contact: &Value) -> Value {
    let mut contact = contact.clone();
    if let Some(object) = contact.as_object_mut()
        && object.get("wa_id").is_some_and(|w| !is_phone(w))
    {
        let user_id = object.remove("wa_id").expect("present");
        object.entry("user_id").or_insert(user_id);
    }
    contact
}

/// One status: the same fields, without On-Premises' `type`, errors in Cloud's form; sent to a
/// business-scoped user id, `recipient_user_id` rather than `recipient_id`, as Meta sends it.
fn status(entry: &Value) -> Value {
    let Value::Object(entry) = entry else { return entry.clone() };
    let mut status = entry.clone();
    status.remove("type");
    if status.get("recipient_id").is_some_and(|r| !is_phone(r)) {
        let user_id = status.remove("recipient_id").expect("present");
        status.entry("recipient_user_id").or_insert(user_id);
    }
    if let Some(Value::Array(errors)) = status.get("errors") {
        let errors: Vec<Value> = errors.iter().map(error).collect();
        status.insert("errors".into(), Value::Array(errors));
    }
    Value::Object(status)
}

/// `{code, title, details}` as Cloud's `{code, title, message, error_data: {details}}`.
fn error(error: &Value) -> Value {
    let onprem = error.get("code").and_then(Value::as_u64).unwrap_or(500);
    let title = error.get("title").and_then(Value::as_str).unwrap_or("Unknown error");
    let mut cloud = json!({
        "code": cloud_code(u32::try_from(onprem).unwrap_or(500)),
        "title": title,
        "message": title,
    });
    if let Some(details) = error.get("details").and_then(Value::as_str) {
        cloud["error_data"] = json!({ "details": details });
    }
    cloud
}

/// A customer's message: a voice note is Cloud's `audio` with `voice: true`, an `unknown` is
/// Cloud's `unsupported`; errors in Cloud's form.
fn message(message: &Value) -> Value {
    let Value::Object(original) = message else { return message.clone() };
    let mut message = original.clone();
    // A customer whose number is hidden: no `from` on Cloud, who wrote is `contacts[].user_id`.
    if message.get("from").is_some_and(|f| !is_phone(f)) {
        message.remove("from");
    }
    match message.get("type").and_then(Value::as_str) {
        Some("voice") => {
            message.insert("type".into(), json!("audio"));
            if let Some(Value::Object(mut voice)) = message.remove("voice") {
                voice.insert("voice".into(), json!(true));
                message.insert("audio".into(), Value::Object(voice));
            }
        }
        Some("unknown") => {
            message.insert("type".into(), json!("unsupported"));
            message.insert("unsupported".into(), json!({ "type": "unknown" }));
        }
        _ => {}
    }
    if let Some(Value::Array(errors)) = message.get("errors") {
        let errors: Vec<Value> = errors.iter().map(error).collect();
        message.insert("errors".into(), Value::Array(errors));
    }
    Value::Object(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> CloudIdentity {
        CloudIdentity {
            business_account_id: "419561257915477".into(),
            phone_number_id: "106540352242922".into(),
            display_phone_number: "15550783881".into(),
        }
    }

    #[test]
    fn statuses_take_cloud_codes_and_lose_their_type() {
        let entry = json!({"id": "wamid.X", "recipient_id": "16315551234", "status": "failed",
            "timestamp": "1750000000", "type": "message",
            "errors": [{"code": 470, "title": "Re-engagement message", "details": "24 hours"}]});
        let hook = identity().statuses(&[entry]);
        let value = &hook["entry"][0]["changes"][0]["value"];
        assert_eq!(value["metadata"]["phone_number_id"], "106540352242922");
        let status = &value["statuses"][0];
        assert_eq!(status.get("type"), None);
        assert_eq!(
            status["errors"][0],
            json!({"code": 131047, "title": "Re-engagement message",
                   "message": "Re-engagement message", "error_data": {"details": "24 hours"}})
        );
    }

    #[test]
    fn customers_known_by_business_scoped_id_look_as_meta_shows_them() {
        let body = json!({"contacts": [{"profile": {"name": "Bo", "username": "bo"},
                "wa_id": "US.99", "user_id": "US.99"}],
            "messages": [{"from": "US.99", "id": "ABG1", "timestamp": "1", "type": "text",
                "text": {"body": "hi"}}]});
        let hook = identity().inbound(&body);
        let value = &hook["entry"][0]["changes"][0]["value"];
        assert_eq!(
            value["contacts"][0],
            json!({"profile": {"name": "Bo", "username": "bo"}, "user_id": "US.99"})
        );
        assert_eq!(value["messages"][0].get("from"), None);
        let entry = json!({"id": "gBE1", "recipient_id": "US.99", "status": "sent",
            "timestamp": "1", "type": "message"});
        let status =
            &identity().statuses(&[entry])["entry"][0]["changes"][0]["value"]["statuses"][0];
        assert_eq!(
            (status.get("recipient_id"), &status["recipient_user_id"]),
            (None, &json!("US.99"))
        );
        let phone = json!({"id": "gBE2", "recipient_id": "16315551234", "status": "sent",
            "timestamp": "1", "recipient_user_id": "US.5"});
        let status =
            &identity().statuses(&[phone])["entry"][0]["changes"][0]["value"]["statuses"][0];
        assert_eq!(status["recipient_id"], "16315551234");
    }

    #[test]
    fn inbound_voice_and_unknown_take_cloud_types() {
        let body = json!({"contacts": [{"profile": {"name": "Ann"}, "wa_id": "16315551234"}],
            "messages": [{"from": "16315551234", "id": "ABG1", "timestamp": "1750000000",
                "type": "voice", "voice": {"id": "m-1", "mime_type": "audio/ogg"}}]});
        let hook = identity().inbound(&body);
        let message = &hook["entry"][0]["changes"][0]["value"]["messages"][0];
        assert_eq!(message["type"], "audio");
        assert_eq!(message["audio"], json!({"id": "m-1", "mime_type": "audio/ogg", "voice": true}));
        let unknown = json!({"messages": [{"from": "1", "id": "ABG2", "timestamp": "1",
            "type": "unknown", "errors": [{"code": 501, "title": "Unknown message type"}]}]});
        let hook = identity().inbound(&unknown);
        let value = &hook["entry"][0]["changes"][0]["value"];
        assert_eq!(value.get("contacts"), None);
        assert_eq!(value["messages"][0]["type"], "unsupported");
        assert_eq!(value["messages"][0]["errors"][0]["code"], 131051);
    }
}
