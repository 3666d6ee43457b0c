//! `POST /v1/messages`: the request as integrations send it, in either dialect (On-Premises, or
//! the Cloud API's fields where the seed lists them), parsed into a [`Message`] that the
//! pipeline carries. A `Message` exists only if every rule held: its serialisation is the
//! canonical On-Premises request that is stored and that the upstream receives.
//!
//! One module per message type; [`field`] is the JSON-path-aware access they all read through,
//! so every rejection names its field by path (`interactive.action.sections[1].rows[3].title`).

pub mod contacts;
mod field;
mod hsm;
pub mod inbound;
pub mod interactive;
pub mod location;
pub mod media;
mod read;
mod recipient;
pub mod template;
mod text;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

pub use self::field::kind;
use self::field::{Obj, not_allowed, unknown, wrong_type};
use self::media::{Media, MediaKind, Place};
pub use self::read::{ReadReceipt, is_cloud_read, parse_cloud_read, parse_read};
pub use self::recipient::{MAX_USER_ID_CHARS, Recipient, UserId, routing_crc};
pub use self::text::{MAX_TEXT_BODY, TextBody};
use crate::{ErrorCode, Rejection};

/// The longest `biz_opaque_callback_data` accepted.
pub const MAX_CALLBACK_DATA: usize = 512;

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
        recipient::routing_crc(&self.0)
    }
}

/// A validated outbound message: who it goes to and what it says. Serialises to the canonical
/// On-Premises request the pipeline stores and the upstream receives; deserialising runs
/// [`Message::parse`], so a stored message is checked again when read back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// A phone number or a business-scoped user id (the Cloud API's `recipient`, folded into
    /// `to`: the canonical request names the recipient once).
    pub to: Recipient,
    /// The message this one replies to (Cloud API).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) context: Option<Context>,
    /// Echoed in every status webhook of this message (Cloud API).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) biz_opaque_callback_data: Option<String>,
    #[serde(flatten)]
    pub content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Context {
    pub(crate) message_id: String,
}

/// What a message says, by `type`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Content {
    Text {
        text: TextBody,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        preview_url: bool,
    },
    Image {
        image: Media,
    },
    Audio {
        audio: Media,
    },
    Video {
        video: Media,
    },
    Document {
        document: Media,
    },
    Sticker {
        sticker: Media,
    },
    Contacts {
        contacts: Vec<contacts::Contact>,
    },
    Location {
        location: location::Location,
    },
    /// Also what a deprecated `hsm` request becomes.
    Template {
        template: Box<template::Template>,
    },
    Interactive {
        interactive: Box<interactive::Interactive>,
    },
    /// An emoji reaction to a message (Cloud API); an empty emoji removes it.
    Reaction {
        reaction: Reaction,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reaction {
    pub(crate) message_id: String,
    pub(crate) emoji: String,
}

/// Every message type, with the key its payload travels under.
/// The `type` of a message this server sends; each type's payload travels under the key of
/// its name. Matched exhaustively, so a new type cannot be parsed as another by accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageType {
    Text,
    Image,
    Audio,
    Video,
    Document,
    Sticker,
    Contacts,
    Location,
    Template,
    Hsm,
    Interactive,
    Reaction,
}

impl MessageType {
    const ALL: [Self; 12] = [
        Self::Text,
        Self::Image,
        Self::Audio,
        Self::Video,
        Self::Document,
        Self::Sticker,
        Self::Contacts,
        Self::Location,
        Self::Template,
        Self::Hsm,
        Self::Interactive,
        Self::Reaction,
    ];

    const fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Document => "document",
            Self::Sticker => "sticker",
            Self::Contacts => "contacts",
            Self::Location => "location",
            Self::Template => "template",
            Self::Hsm => "hsm",
            Self::Interactive => "interactive",
            Self::Reaction => "reaction",
        }
    }

    fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

const COMMON: [&str; 8] = [
    "to",
    "recipient",
    "type",
    "recipient_type",
    "preview_url",
    "messaging_product",
    "context",
    "biz_opaque_callback_data",
];

impl Message {
    /// Parses a `/v1/messages` body. Works on a JSON value so that every rule can name the
    /// field it concerns; unknown fields are refused by name.
    pub fn parse(request: &Value) -> Result<Self, Rejection> {
        let Value::Object(map) = request else {
            return Err(Rejection::new(
                ErrorCode::InvalidRequest,
                "request body must be a JSON object",
            ));
        };
        let top = Obj { path: String::new(), map };
        // The type first: a type this server cannot send (whose payload travels under its own,
        // unknown, key) is 1026 as On-Premises answers it, not an unknown parameter.
        let kind = top.str("type")?.unwrap_or("text");
        let Some(message_type) = MessageType::named(kind) else {
            return Err(Rejection::new(
                ErrorCode::ReceiverIncapable,
                format!("type: '{kind}' is not a message type this server can send"),
            ));
        };
        if let Some(key) =
            map.keys().find(|k| !COMMON.contains(&k.as_str()) && MessageType::named(k).is_none())
        {
            return Err(unknown(key));
        }
        let to = recipient(&top)?;
        individual_whatsapp(&top)?;
        let context = match top.obj("context")? {
            None => None,
            Some(c) => {
                c.only(&["message_id"])?;
                Some(Context { message_id: c.req_text("message_id", 256)? })
            }
        };
        let biz_opaque_callback_data = top.text("biz_opaque_callback_data", MAX_CALLBACK_DATA)?;
        if let Some(other) =
            MessageType::ALL.iter().find(|t| **t != message_type && top.has(t.as_str()))
        {
            return Err(not_allowed(other.as_str(), &format!("when type is '{kind}'")));
        }
        if kind != "text" {
            top.forbid("preview_url", "except for type 'text'")?;
        }
        // Each type's payload is the object under its name; contacts are an array.
        let payload = || top.req_obj(kind);
        let media = |m: MediaKind| Media::parse(&payload()?, m, Place::Message);
        let content = match message_type {
            MessageType::Text => {
                let (text, preview_url) = text::parse(&payload()?, top.bool("preview_url")?)?;
                Content::Text { text, preview_url }
            }
            MessageType::Contacts => Content::Contacts { contacts: contacts::parse(&top)? },
            MessageType::Image => Content::Image { image: media(MediaKind::Image)? },
            MessageType::Audio => Content::Audio { audio: media(MediaKind::Audio)? },
            MessageType::Video => Content::Video { video: media(MediaKind::Video)? },
            MessageType::Document => Content::Document { document: media(MediaKind::Document)? },
            MessageType::Sticker => Content::Sticker { sticker: media(MediaKind::Sticker)? },
            MessageType::Location => {
                Content::Location { location: location::Location::parse(&payload()?)? }
            }
            MessageType::Template => {
                Content::Template { template: Box::new(template::Template::parse(&payload()?)?) }
            }
            MessageType::Hsm => Content::Template { template: Box::new(hsm::parse(&payload()?)?) },
            MessageType::Interactive => Content::Interactive {
                interactive: Box::new(interactive::Interactive::parse(&payload()?)?),
            },
            MessageType::Reaction => {
                let payload = payload()?;
                payload.only(&["message_id", "emoji"])?;
                let emoji = payload.required("emoji", payload.str("emoji")?)?;
                field::check_len(&payload.at("emoji"), emoji, 10)?;
                Content::Reaction {
                    reaction: Reaction {
                        message_id: payload.req_text("message_id", 256)?,
                        emoji: emoji.to_owned(),
                    },
                }
            }
        };
        Ok(Self { to, context, biz_opaque_callback_data, content })
    }

    /// The uploaded media id the message refers to, if any: the HTTP layer checks that it
    /// exists in the media store before accepting the message.
    pub fn media_id(&self) -> Option<&str> {
        match &self.content {
            Content::Image { image: m }
            | Content::Audio { audio: m }
            | Content::Video { video: m }
            | Content::Document { document: m }
            | Content::Sticker { sticker: m } => m.id(),
            Content::Template { template } => template.media_id(),
            Content::Interactive { interactive } => interactive.media_id(),
            Content::Text { .. }
            | Content::Contacts { .. }
            | Content::Location { .. }
            | Content::Reaction { .. } => None,
        }
    }

    /// The `biz_opaque_callback_data` to echo in this message's status webhooks.
    pub fn callback_data(&self) -> Option<&str> {
        self.biz_opaque_callback_data.as_deref()
    }

    /// The message this one replies to, if any.
    pub fn context_message_id(&self) -> Option<&str> {
        self.context.as_ref().map(|c| c.message_id.as_str())
    }

    /// The request as the store keeps it (`serde_json::to_string` of a [`Message`]): the
    /// canonical request JSON.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).expect("a validated message serialises")
    }

    /// A message read back from the store: its stored request, parsed and checked again. An
    /// error means the stored payload is damaged or no longer valid (a rule tightened since it
    /// was accepted), never the client's fault.
    pub fn from_stored(payload: &str) -> Result<Self, Rejection> {
        let value: Value = serde_json::from_str(payload).map_err(|e| {
            Rejection::new(ErrorCode::InternalError, format!("stored request is not JSON: {e}"))
        })?;
        Self::parse(&value)
    }
}

/// Who the message goes to: `to`, or the Cloud API's `recipient` (a BSUID or parent BSUID) when
/// `to` is absent; `to` takes precedence when both are given, as Meta documents (a `recipient`
/// beside it must still be well formed).
fn recipient(top: &Obj<'_>) -> Result<Recipient, Rejection> {
    let to = match (top.get("to"), top.get("recipient")) {
        (Some(Value::String(s)), _) => Recipient::parse("to", s)?,
        (Some(other), _) => return Err(wrong_type("to", "a string", other)),
        (None, Some(Value::String(s))) => Recipient::parse("recipient", s)?,
        (None, Some(other)) => return Err(wrong_type("recipient", "a string", other)),
        (None, None) => return Err(Rejection::missing("to")),
    };
    match top.get("recipient").filter(|_| top.has("to")) {
        Some(Value::String(s)) => {
            Recipient::parse("recipient", s)?;
        }
        Some(other) => return Err(wrong_type("recipient", "a string", other)),
        None => {}
    }
    Ok(to)
}

/// `recipient_type` (individual; groups are not supported) and `messaging_product` (whatsapp),
/// both optional.
fn individual_whatsapp(top: &Obj<'_>) -> Result<(), Rejection> {
    match top.str("recipient_type")? {
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
    match top.str("messaging_product")? {
        None | Some("whatsapp") => Ok(()),
        Some(other) => {
            Err(Rejection::invalid("messaging_product", format!("'{other}' must be 'whatsapp'")))
        }
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::parse(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_stored_message_reads_back_as_itself() {
        let m =
            Message::parse(&json!({"to": "16315551234", "type": "text", "text": {"body": "hi"}}))
                .unwrap();
        assert_eq!(Message::from_stored(&m.to_stored()).unwrap(), m);
        assert_eq!(Message::from_stored("{not json").unwrap_err().code, ErrorCode::InternalError);
        assert_eq!(
            Message::from_stored(r#"{"to":"1","type":"text","text":{"body":"hi"}}"#)
                .unwrap_err()
                .code,
            ErrorCode::ParameterValueInvalid,
            "no longer valid"
        );
    }

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
