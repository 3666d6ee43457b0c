//! An On-Premises request as the Cloud API takes it: `POST /{phone-number-id}/messages`, whose
//! body Meta describes as the `Message` schema of `cloud-api/business-messaging-api_v23.0.yaml`.
//! A pure function over the canonical request a [`Message`] serialises to; each step names the
//! field it maps. Where Meta's description is narrower than On-Premises, what it accepts is
//! sent (the README lists each such conversion):
//!
//! - `messaging_product: "whatsapp"` and `recipient_type: "individual"` are added (required);
//! - a recipient that is a business-scoped user id goes as `recipient` instead of `to` (Meta's
//!   "Business-scoped user IDs" page; `to` carries phone numbers only);
//! - `text.preview_url` takes the On-Premises top-level `preview_url`;
//! - a template loses its `namespace` (Cloud templates have none) and its language `policy`
//!   becomes `deterministic` (the only one Cloud knows; On-Premises' legacy `fallback` too);
//! - media lose their `provider` (On-Premises media providers fetch links Cloud fetches itself);
//!   an uploaded media's id becomes its Cloud media id (see [`super::media`]);
//! - location coordinates become strings (the schema types them so);
//! - contact phones, emails, addresses and urls keep a `type` only if it is `HOME` or `WORK`
//!   (the only ones the schema allows; `MAIN`, `CELL`, `IPHONE`... are dropped).
//!
//! `context`, `biz_opaque_callback_data`, interactive messages and reactions pass as they are
//! (Premise also keeps `biz_opaque_callback_data` with the message and echoes it in the
//! message's status webhooks itself).

use std::collections::HashMap;

use premise_wire::Message;
use serde_json::{Map, Value, json};

/// The Cloud API body for `message`; `cloud` gives Cloud's id for each id of Premise's the
/// message names: uploaded media (by media id) and messages it replies or reacts to (by
/// message id; a customer's message already has Cloud's id).
pub fn cloud_request(message: &Message, cloud: &HashMap<String, String>) -> Value {
    let cloud_media = cloud;
    let mut request = serde_json::to_value(message).expect("a validated message serialises");
    let Value::Object(body) = &mut request else { unreachable!("a message is an object") };
    for pointer in REFERENCES {
        if let Some(Value::String(id)) = body_pointer(body, &pointer)
            && let Some(cloud_id) = cloud.get(id.as_str())
        {
            *id = cloud_id.clone();
        }
    }
    body.insert("messaging_product".into(), json!("whatsapp"));
    body.insert("recipient_type".into(), json!("individual"));
    // A customer known by a business-scoped user id is addressed by `recipient`, not `to`.
    if let Some(user) = message.to.user_id() {
        body.remove("to");
        body.insert("recipient".into(), json!(user.as_str()));
    }
    let kind = body.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
    match kind.as_str() {
        "text" => {
            if let Some(preview) = body.remove("preview_url")
                && let Some(Value::Object(text)) = body.get_mut("text")
            {
                text.insert("preview_url".into(), preview);
            }
        }
        "image" | "audio" | "video" | "document" | "sticker" => {
            if let Some(Value::Object(media)) = body.get_mut(&kind) {
                cloud_media_object(media, cloud_media);
            }
        }
        "location" => {
            if let Some(Value::Object(location)) = body.get_mut("location") {
                coordinates_as_strings(location);
            }
        }
        "contacts" => {
            for contact in array_mut(body.get_mut("contacts")) {
                if let Value::Object(contact) = contact {
                    contact_types(contact);
                }
            }
        }
        "template" => {
            if let Some(Value::Object(template)) = body.get_mut("template") {
                cloud_template(template, cloud_media);
            }
        }
        "interactive" => {
            if let Some(Value::Object(header)) =
                body.get_mut("interactive").and_then(|i| i.get_mut("header"))
            {
                for media in ["image", "video", "document"] {
                    if let Some(Value::Object(object)) = header.get_mut(media) {
                        cloud_media_object(object, cloud_media);
                    }
                }
            }
        }
        _ => {}
    }
    request
}

/// Where a message names another message: the one it replies to, the one it reacts to.
const REFERENCES: [[&str; 2]; 2] = [["context", "message_id"], ["reaction", "message_id"]];

fn body_pointer<'a>(body: &'a mut Map<String, Value>, path: &[&str; 2]) -> Option<&'a mut Value> {
    body.get_mut(path[0]).and_then(|v| v.get_mut(path[1]))
}

/// The message ids of Premise's a message names (replied or reacted to), to exchange for
/// Cloud's.
pub fn referenced_messages(message: &Message) -> Vec<String> {
    let request = serde_json::to_value(message).expect("a validated message serialises");
    REFERENCES
        .iter()
        .filter_map(|[a, b]| request.get(*a)?.get(*b)?.as_str().map(str::to_owned))
        .collect()
}

/// The Premise media ids a message names (uploaded media, to exchange for Cloud ids).
pub fn uploaded_media(message: &Message) -> Vec<String> {
    uploaded_media_in(&serde_json::to_value(message).expect("a validated message serialises"))
}

/// [`uploaded_media`] of a message already in its canonical JSON.
pub fn uploaded_media_in(request: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    collect_media_ids(request, &mut ids);
    ids.sort();
    ids.dedup();
    ids
}

const MEDIA_KEYS: [&str; 5] = ["image", "audio", "video", "document", "sticker"];

fn collect_media_ids(value: &Value, ids: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if MEDIA_KEYS.contains(&key.as_str())
                    && let Some(id) = inner.get("id").and_then(Value::as_str)
                {
                    ids.push(id.to_owned());
                }
                collect_media_ids(inner, ids);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_media_ids(item, ids)),
        _ => {}
    }
}

fn array_mut(value: Option<&mut Value>) -> impl Iterator<Item = &mut Value> {
    value.and_then(Value::as_array_mut).into_iter().flatten()
}

/// `provider` dropped; an uploaded media's `id` exchanged for its Cloud id.
fn cloud_media_object(media: &mut Map<String, Value>, cloud_media: &HashMap<String, String>) {
    media.remove("provider");
    if let Some(Value::String(id)) = media.get_mut("id")
        && let Some(cloud_id) = cloud_media.get(id.as_str())
    {
        *id = cloud_id.clone();
    }
}

fn coordinates_as_strings(location: &mut Map<String, Value>) {
    for key in ["latitude", "longitude"] {
        if let Some(value @ Value::Number(_)) = location.get_mut(key) {
            *value = Value::String(value.to_string());
        }
    }
}

fn contact_types(contact: &mut Map<String, Value>) {
    for list in ["phones", "emails", "addresses", "urls"] {
        for item in array_mut(contact.get_mut(list)) {
            if let Value::Object(item) = item
                && !matches!(item.get("type").and_then(Value::as_str), Some("HOME" | "WORK"))
            {
                item.remove("type");
            }
        }
    }
}

fn cloud_template(template: &mut Map<String, Value>, cloud_media: &HashMap<String, String>) {
    template.remove("namespace");
    if let Some(Value::Object(language)) = template.get_mut("language") {
        language.insert("policy".into(), json!("deterministic"));
    }
    for component in array_mut(template.get_mut("components")) {
        for parameter in array_mut(component.get_mut("parameters")) {
            let Value::Object(parameter) = parameter else { continue };
            for media in ["image", "video", "document"] {
                if let Some(Value::Object(object)) = parameter.get_mut(media) {
                    cloud_media_object(object, cloud_media);
                }
            }
            if let Some(Value::Object(location)) = parameter.get_mut("location") {
                coordinates_as_strings(location);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(request: &Value) -> Message {
        Message::parse(request).unwrap()
    }

    #[test]
    fn text_moves_preview_url_and_keeps_callback_data() {
        let m = message(&json!({"to": "+1 631 555 1234", "type": "text", "preview_url": true,
            "text": {"body": "https://example.com"}, "biz_opaque_callback_data": "order-7"}));
        assert_eq!(
            cloud_request(&m, &HashMap::new()),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                "to": "16315551234", "type": "text", "biz_opaque_callback_data": "order-7",
                "text": {"body": "https://example.com", "preview_url": true}})
        );
    }

    #[test]
    fn a_business_scoped_user_id_goes_as_recipient() {
        for request in [
            json!({"to": "US.13491208655302741918", "type": "text", "text": {"body": "hi"}}),
            json!({"recipient": "US.13491208655302741918", "type": "text", "text": {"body": "hi"}}),
        ] {
            let sent = cloud_request(&message(&request), &HashMap::new());
            assert_eq!(sent["recipient"], "US.13491208655302741918");
            assert_eq!(sent.get("to"), None);
        }
        // Both given: `to` takes precedence, as Meta documents.
        let both = message(&json!({"to": "16315551234", "recipient": "US.13491208655302741918",
            "type": "text", "text": {"body": "hi"}}));
        let sent = cloud_request(&both, &HashMap::new());
        assert_eq!((sent["to"].as_str(), sent.get("recipient")), (Some("16315551234"), None));
    }

    #[test]
    fn templates_lose_their_namespace_and_media_ids_become_cloud_ids() {
        let m = message(&json!({"to": "16315551234", "type": "template", "template": {
            "namespace": "ns", "name": "order_update",
            "language": {"policy": "fallback", "code": "en_US"},
            "components": [{"type": "header", "parameters": [
                {"type": "image", "image": {"id": "premise-media-1", "provider": {"name": "p"}}}]}]}}));
        assert_eq!(uploaded_media(&m), ["premise-media-1"]);
        let cloud = HashMap::from([("premise-media-1".to_owned(), "1234567890".to_owned())]);
        let request = cloud_request(&m, &cloud);
        assert_eq!(request["template"].get("namespace"), None);
        assert_eq!(request["template"]["language"]["policy"], "deterministic");
        assert_eq!(
            request["template"]["components"][0]["parameters"][0]["image"],
            json!({"id": "1234567890"})
        );
    }

    #[test]
    fn replies_and_reactions_name_clouds_ids() {
        let m = message(&json!({"to": "16315551234", "type": "reaction",
            "reaction": {"message_id": "gBEG1", "emoji": "👍"}}));
        assert_eq!(referenced_messages(&m), ["gBEG1"]);
        let cloud = HashMap::from([("gBEG1".to_owned(), "wamid.CLOUD1".to_owned())]);
        assert_eq!(cloud_request(&m, &cloud)["reaction"]["message_id"], "wamid.CLOUD1");
        let m = message(&json!({"to": "16315551234", "type": "text", "text": {"body": "yes"},
            "context": {"message_id": "wamid.CUSTOMER"}}));
        assert_eq!(
            cloud_request(&m, &cloud)["context"]["message_id"],
            "wamid.CUSTOMER",
            "a customer's message keeps its (Cloud) id"
        );
    }

    #[test]
    fn locations_and_contacts_fit_the_schema() {
        let m = message(&json!({"to": "16315551234", "type": "location",
            "location": {"latitude": 37.48, "longitude": -122.14, "name": "HQ", "address": "1 Hacker Way"}}));
        let request = cloud_request(&m, &HashMap::new());
        assert_eq!(request["location"]["latitude"], "37.48");
        assert_eq!(request["location"]["longitude"], "-122.14");
        let m = message(&json!({"to": "16315551234", "type": "contacts", "contacts": [{
            "name": {"formatted_name": "Ada", "first_name": "Ada"},
            "phones": [{"phone": "+1 631 555 0000", "type": "CELL"}, {"phone": "+1 631 555 0001", "type": "WORK"}]}]}));
        let request = cloud_request(&m, &HashMap::new());
        assert_eq!(request["contacts"][0]["phones"][0].get("type"), None);
        assert_eq!(request["contacts"][0]["phones"][1]["type"], "WORK");
    }
}
