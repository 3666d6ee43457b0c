//! `POST /v1/messages`: the request as integrations send it, parsed into a [`Message`] that the
//! pipeline carries. For now the `text` type; the other types of the seed plug in here.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ErrorCode, Rejection};

/// The longest text body WhatsApp accepts (1001 beyond it).
pub const MAX_TEXT_BODY: usize = 4096;

/// A recipient's WhatsApp id: digits only, as WhatsApp normalises a phone number (no `+`,
/// spaces, dashes, dots or parentheses).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WaId(String);

impl WaId {
    pub fn parse(field: &str, raw: &str) -> Result<Self, Rejection> {
        let digits: String =
            raw.chars().filter(|c| !matches!(c, '+' | ' ' | '-' | '.' | '(' | ')')).collect();
        if digits.is_empty() {
            return Err(Rejection::missing(field));
        }
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(Rejection::invalid(
                field,
                format!("'{raw}' is not a phone number or WhatsApp id"),
            ));
        }
        if !(5..=20).contains(&digits.len()) {
            return Err(Rejection::invalid(field, format!("'{raw}' must have 5 to 20 digits")));
        }
        Ok(Self(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// IEEE CRC-32 of the id, the input of shard routing.
    pub fn crc32(&self) -> u32 {
        crc32fast::hash(self.0.as_bytes())
    }
}

/// A validated outbound message: who it goes to and what it says. Serialises to the canonical
/// On-Premises request the pipeline stores and the upstream receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub to: WaId,
    #[serde(flatten)]
    pub content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Content {
    Text {
        text: TextBody,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        preview_url: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextBody {
    pub body: String,
}

impl Message {
    /// Parses a `/v1/messages` body. Works on a JSON value so that every rule can name the
    /// field it concerns; unknown fields are refused by name.
    pub fn parse(request: &Value) -> Result<Self, Rejection> {
        let object = request.as_object().ok_or_else(|| {
            Rejection::new(ErrorCode::InvalidRequest, "request body must be a JSON object")
        })?;
        let allowed = ["to", "type", "recipient_type", "preview_url", "text"];
        if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(Rejection::new(
                ErrorCode::ParameterNotRequired,
                format!("Parameter '{unknown}' is not a known parameter"),
            ));
        }
        let to = match object.get("to") {
            None | Some(Value::Null) => return Err(Rejection::missing("to")),
            Some(Value::String(s)) => WaId::parse("to", s)?,
            Some(other) => {
                return Err(Rejection::invalid(
                    "to",
                    format!("expected a string, got {}", kind(other)),
                ));
            }
        };
        match optional_str(object.get("recipient_type"), "recipient_type")? {
            None | Some("individual") => {}
            Some("group") => {
                return Err(Rejection::new(
                    ErrorCode::InvalidRecipientType,
                    "recipient_type: group messaging is not supported",
                ));
            }
            Some(other) => {
                return Err(Rejection::new(
                    ErrorCode::InvalidRecipientType,
                    format!("recipient_type: '{other}' is not one of individual, group"),
                ));
            }
        }
        let kind_name = optional_str(object.get("type"), "type")?.unwrap_or("text");
        let content = match kind_name {
            "text" => parse_text(object)?,
            other => {
                return Err(Rejection::new(
                    ErrorCode::ReceiverIncapable,
                    format!("type: '{other}' is not a message type this server can send"),
                ));
            }
        };
        Ok(Self { to, content })
    }
}

fn parse_text(object: &serde_json::Map<String, Value>) -> Result<Content, Rejection> {
    let text = object.get("text").ok_or_else(|| Rejection::missing("text"))?;
    let text = text.as_object().ok_or_else(|| {
        Rejection::invalid("text", format!("expected an object, got {}", kind(text)))
    })?;
    if let Some(unknown) = text.keys().find(|k| !["body", "preview_url"].contains(&k.as_str())) {
        return Err(Rejection::new(
            ErrorCode::ParameterNotRequired,
            format!("Parameter 'text.{unknown}' is not a known parameter"),
        ));
    }
    let body = match text.get("body") {
        None | Some(Value::Null) => return Err(Rejection::missing("text.body")),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(Rejection::invalid(
                "text.body",
                format!("expected a string, got {}", kind(other)),
            ));
        }
    };
    if body.trim().is_empty() {
        return Err(Rejection::invalid("text.body", "must not be empty"));
    }
    let length = body.chars().count();
    if length > MAX_TEXT_BODY {
        return Err(Rejection::new(
            ErrorCode::MessageTooLong,
            format!("text.body: at most {MAX_TEXT_BODY} characters (got {length})"),
        ));
    }
    // On-Premises has `preview_url` at the top level, the Cloud API inside `text`.
    let top = optional_bool(object.get("preview_url"), "preview_url")?;
    let nested = optional_bool(text.get("preview_url"), "text.preview_url")?;
    Ok(Content::Text {
        text: TextBody { body: body.clone() },
        preview_url: top.or(nested).unwrap_or(false),
    })
}

fn optional_str<'a>(value: Option<&'a Value>, field: &str) -> Result<Option<&'a str>, Rejection> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => {
            Err(Rejection::invalid(field, format!("expected a string, got {}", kind(other))))
        }
    }
}

fn optional_bool(value: Option<&Value>, field: &str) -> Result<Option<bool>, Rejection> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
        Some(other) => {
            Err(Rejection::invalid(field, format!("expected a boolean, got {}", kind(other))))
        }
    }
}

/// The JSON type of a value, for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_text_in_both_dialects() {
        let m = Message::parse(&json!({"to": "+1 (631) 555-1234", "type": "text", "preview_url": true, "text": {"body": "hi"}})).unwrap();
        assert_eq!(m.to.as_str(), "16315551234");
        assert_eq!(
            m.content,
            Content::Text { text: TextBody { body: "hi".into() }, preview_url: true }
        );
        let m = Message::parse(
            &json!({"to": "16315551234", "text": {"body": "hi", "preview_url": true}}),
        )
        .unwrap();
        assert!(
            matches!(m.content, Content::Text { preview_url: true, .. }),
            "type defaults to text"
        );
        let stored = serde_json::to_value(&m).unwrap();
        assert_eq!(
            stored,
            json!({"to": "16315551234", "type": "text", "text": {"body": "hi"}, "preview_url": true})
        );
        assert_eq!(serde_json::from_value::<Message>(stored).unwrap(), m);
    }

    #[test]
    fn rejections_name_the_field() {
        let cases = [
            (
                json!({"type": "text", "text": {"body": "x"}}),
                ErrorCode::RequiredParameterMissing,
                "'to'",
            ),
            (json!({"to": "abc", "text": {"body": "x"}}), ErrorCode::ParameterValueInvalid, "to:"),
            (
                json!({"to": "123", "text": {"body": "x"}}),
                ErrorCode::ParameterValueInvalid,
                "5 to 20",
            ),
            (json!({"to": "16315551234"}), ErrorCode::RequiredParameterMissing, "'text'"),
            (
                json!({"to": "16315551234", "text": {}}),
                ErrorCode::RequiredParameterMissing,
                "'text.body'",
            ),
            (
                json!({"to": "16315551234", "text": {"body": 5}}),
                ErrorCode::ParameterValueInvalid,
                "text.body: expected a string",
            ),
            (
                json!({"to": "16315551234", "text": {"body": "x".repeat(4097)}}),
                ErrorCode::MessageTooLong,
                "text.body: at most 4096",
            ),
            (
                json!({"to": "16315551234", "text": {"body": "x"}, "colour": 1}),
                ErrorCode::ParameterNotRequired,
                "'colour'",
            ),
            (
                json!({"to": "16315551234", "recipient_type": "group", "text": {"body": "x"}}),
                ErrorCode::InvalidRecipientType,
                "group",
            ),
            (
                json!({"to": "16315551234", "type": "carrier_pigeon"}),
                ErrorCode::ReceiverIncapable,
                "carrier_pigeon",
            ),
            (
                json!({"to": "16315551234", "preview_url": 3, "text": {"body": "x"}}),
                ErrorCode::ParameterValueInvalid,
                "preview_url",
            ),
        ];
        for (request, code, part) in cases {
            let err = Message::parse(&request).unwrap_err();
            assert_eq!(err.code, code, "{request}: {err}");
            assert!(err.details.contains(part), "{request}: {}", err.details);
        }
        assert!(
            Message::parse(&json!({"to": "16315551234", "text": {"body": "x".repeat(4096)}}))
                .is_ok()
        );
    }
}
