//! A customer's message as the sandbox injects it (`POST /v1/sandbox/inbound`): the
//! `messages[0]` object of the On-Premises inbound webhook (`docs/onprem-api.md` section 9) plus an
//! optional `profile`. Parsed here so a bad injection is refused naming its field, and so the
//! webhook built from it has the shape integrations expect.

use serde_json::{Map, Value, json};

use super::field::Obj;
use super::{Recipient, UserId};
use crate::{ErrorCode, Rejection};

/// The inbound types the sandbox injects, each carried under its own key.
pub const INBOUND_TYPES: [&str; 12] = [
    "text",
    "image",
    "audio",
    "voice",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
    "button",
    "interactive",
    "reaction",
];

/// A validated inbound message, before `id` and `timestamp` are filled in. The customer is named
/// by `from` (a phone number, or a business-scoped user id for a customer whose number is
/// hidden), `user_id` (their BSUID), or only `profile.username` (a username customer whose BSUID
/// the sandbox makes up).
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    pub from: Option<Recipient>,
    pub user_id: Option<UserId>,
    pub username: Option<String>,
    pub id: Option<String>,
    /// Unix seconds, as given.
    pub timestamp: Option<String>,
    pub profile_name: Option<String>,
    /// `messages[0]` without `profile`, `id` and `timestamp`.
    message: Map<String, Value>,
}

impl Inbound {
    pub fn parse(body: &Value) -> Result<Self, Rejection> {
        let top = Obj::of("", body)?;
        let kind = top.req_text("type", 32)?;
        if !INBOUND_TYPES.contains(&kind.as_str()) {
            return Err(Rejection::invalid(
                "type",
                format!("'{kind}' is not one of {}", INBOUND_TYPES.join(", ")),
            ));
        }
        let mut allowed = vec!["from", "user_id", "id", "timestamp", "type", "context", "profile"];
        allowed.push(kind.as_str());
        top.only(&allowed)?;
        let from = match top.text("from", 160)? {
            Some(raw) => Some(Recipient::parse("from", &raw)?),
            None => None,
        };
        let user_id = match top.text("user_id", 160)? {
            Some(raw) => Some(UserId::parse("user_id", &raw)?),
            None => None,
        };
        let id = top.opt_nonblank("id", 128)?;
        let timestamp = match top.get("timestamp") {
            None => None,
            Some(Value::Number(n)) if n.as_u64().is_some() => Some(n.to_string()),
            Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                Some(s.clone())
            }
            Some(_) => {
                return Err(Rejection::invalid("timestamp", "expected Unix seconds"));
            }
        };
        let (profile_name, username) = match top.obj("profile")? {
            Some(profile) => {
                profile.only(&["name", "username"])?;
                (profile.text("name", 256)?, profile.text("username", 64)?)
            }
            None => (None, None),
        };
        if from.is_none() && user_id.is_none() && username.is_none() {
            return Err(Rejection::missing("from"));
        }
        if let Some(context) = top.obj("context")? {
            context.req_text("id", 128)?;
            context.text("from", 32)?;
        }
        check_payload(&top, &kind)?;
        let mut message = top.map.clone();
        for key in ["profile", "id", "timestamp", "from", "user_id"] {
            message.remove(key);
        }
        Ok(Self { from, user_id, username, id, timestamp, profile_name, message })
    }

    /// The `messages[0]` entry with its id and timestamp, and the whole webhook body, from the
    /// customer `from` (the key the integration replies to: their number, or their BSUID when
    /// the number is hidden) whose BSUID is `user_id`.
    pub fn webhook(
        &self,
        id: &str,
        timestamp: &str,
        default_name: &str,
        from: &str,
        user_id: &str,
    ) -> (Value, Value) {
        let mut message = Map::new();
        message.insert("from".to_owned(), json!(from));
        message.insert("id".to_owned(), json!(id));
        message.insert("timestamp".to_owned(), json!(timestamp));
        for (key, value) in &self.message {
            message.entry(key.clone()).or_insert_with(|| value.clone());
        }
        let message = Value::Object(message);
        let name = self.profile_name.as_deref().unwrap_or(default_name);
        let mut profile = json!({ "name": name });
        if let Some(username) = &self.username {
            profile["username"] = json!(username);
        }
        let body = json!({
            "contacts": [{ "profile": profile, "wa_id": from, "user_id": user_id }],
            "messages": [message],
        });
        (message, body)
    }
}

/// The type's own object, checked as far as integrations rely on its fields.
fn check_payload(top: &Obj<'_>, kind: &str) -> Result<(), Rejection> {
    match kind {
        "text" => {
            top.req_obj("text")?.req_text("body", 4096)?;
        }
        "location" => {
            let location = top.req_obj("location")?;
            for key in ["latitude", "longitude"] {
                let found = location.number(key)?;
                location.required(key, found)?;
            }
        }
        "contacts" => {
            let contacts = top.req_array("contacts", 1, 257, ErrorCode::ParameterValueInvalid)?;
            for (path, contact) in contacts {
                Obj::of(path, contact)?.req_obj("name")?.req_text("formatted_name", 1024)?;
            }
        }
        "button" => {
            top.req_obj("button")?.req_text("text", 256)?;
        }
        "interactive" => {
            let interactive = top.req_obj("interactive")?;
            let reply = interactive.req_text("type", 32)?;
            if reply != "button_reply" && reply != "list_reply" {
                return Err(Rejection::invalid(
                    &interactive.at("type"),
                    format!("'{reply}' is not button_reply or list_reply"),
                ));
            }
            let chosen = interactive.req_obj(&reply)?;
            chosen.req_text("id", 256)?;
            chosen.req_text("title", 256)?;
        }
        "reaction" => {
            // An empty emoji takes a reaction back, as WhatsApp sends it.
            let reaction = top.req_obj("reaction")?;
            reaction.req_text("message_id", 256)?;
            reaction.text("emoji", 32)?.ok_or_else(|| Rejection::missing(&reaction.at("emoji")))?;
        }
        media => {
            top.req_obj(media)?.req_text("id", 256)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_in_and_wraps_a_text() {
        let inbound = Inbound::parse(&json!({
            "from": "+1 650 555 0107", "type": "text", "text": {"body": "hi"},
            "profile": {"name": "Ada"}, "context": {"from": "16505550999", "id": "gBEx"}
        }))
        .unwrap();
        assert_eq!(inbound.from.as_ref().unwrap().as_str(), "16505550107");
        let (message, body) =
            inbound.webhook("ABG1", "1700000000", "Customer", "16505550107", "US.1234");
        assert_eq!(message["from"], "16505550107");
        assert_eq!(message["context"]["id"], "gBEx");
        assert_eq!(
            body["contacts"][0],
            json!({"profile": {"name": "Ada"}, "wa_id": "16505550107", "user_id": "US.1234"})
        );
        assert_eq!(body["messages"][0]["timestamp"], "1700000000");
        assert!(body["messages"][0].get("profile").is_none());
    }

    #[test]
    fn a_username_customer_needs_no_number() {
        let inbound = Inbound::parse(&json!({
            "type": "text", "text": {"body": "hi"}, "profile": {"name": "Bo", "username": "bo.bakes"}
        }))
        .unwrap();
        assert_eq!((inbound.from.as_ref(), inbound.username.as_deref()), (None, Some("bo.bakes")));
        let (message, body) = inbound.webhook("ABG2", "1", "Customer", "US.99", "US.99");
        assert_eq!(message["from"], "US.99");
        assert_eq!(
            body["contacts"][0],
            json!({"profile": {"name": "Bo", "username": "bo.bakes"}, "wa_id": "US.99", "user_id": "US.99"})
        );
        let by_id = Inbound::parse(&json!({"from": "US.13491208655302741918", "type": "text",
            "text": {"body": "hi"}}))
        .unwrap();
        assert!(by_id.from.unwrap().user_id().is_some());
        let bad =
            Inbound::parse(&json!({"user_id": "US.12-3", "type": "text", "text": {"body": "x"}}));
        assert!(bad.unwrap_err().to_string().contains("user_id"));
    }

    #[test]
    fn a_reaction_names_its_message_and_its_emoji() {
        let reaction = |body: Value| Inbound::parse(&body);
        let ok = reaction(json!({"from": "16505550107", "type": "reaction",
            "reaction": {"message_id": "gBEx", "emoji": "👍"}}));
        assert!(ok.is_ok());
        let removed = reaction(json!({"from": "16505550107", "type": "reaction",
            "reaction": {"message_id": "gBEx", "emoji": ""}}));
        assert!(removed.is_ok(), "an empty emoji takes the reaction back");
        let missing = reaction(
            json!({"from": "16505550107", "type": "reaction", "reaction": {"emoji": "👍"}}),
        );
        assert!(missing.unwrap_err().details.contains("reaction.message_id"));
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (json!({"type": "text", "text": {"body": "x"}}), "from"),
            (json!({"from": "1650", "type": "text", "text": {"body": "x"}}), "from"),
            (json!({"from": "16505550107", "type": "fax"}), "type"),
            (json!({"from": "16505550107", "type": "text", "text": {}}), "text.body"),
            (
                json!({"from": "16505550107", "type": "text", "text": {"body": "x"}, "image": {}}),
                "image",
            ),
            (
                json!({"from": "16505550107", "type": "image", "image": {"mime_type": "image/jpeg"}}),
                "image.id",
            ),
            (
                json!({"from": "16505550107", "type": "location", "location": {"latitude": 1}}),
                "location.longitude",
            ),
            (
                json!({"from": "16505550107", "type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": "a"}}}),
                "interactive.list_reply.title",
            ),
            (
                json!({"from": "16505550107", "type": "text", "text": {"body": "x"}, "timestamp": "soon"}),
                "timestamp",
            ),
            (
                json!({"from": "16505550107", "type": "text", "text": {"body": "x"}, "context": {}}),
                "context.id",
            ),
        ];
        for (body, field) in cases {
            let error = Inbound::parse(&body).unwrap_err();
            assert!(error.details.contains(field), "{body}: {error}");
        }
    }
}
