//! `template` messages: a pre-approved template by `name` (and, before v2.41, `namespace`), a
//! `language`, and `components` (header, body, buttons) whose parameters fill its variables.
//! Meta's On-Premises Postman collection sends a single parameter object where the reference
//! has an array, and media parameters flat (`{"type":"image","link":...}`); both are accepted
//! and stored in the reference shape.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::field::{Item, Obj, check_count, wrong_type};
use super::location::Location;
use super::media::{Media, MediaKind, Place};
use crate::{ErrorCode, Rejection};

/// The longest text parameter accepted (as the Cloud API).
pub const MAX_TEXT_PARAM: usize = 32_768;
/// The longest coupon code of a `copy_code` button (as the Cloud API).
pub const MAX_COUPON_CODE: usize = 15;
/// The longest quick-reply payload accepted.
pub const MAX_PAYLOAD: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Template {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) namespace: Option<String>,
    pub(crate) name: String,
    pub(crate) language: Language,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) components: Vec<Component>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Language {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) policy: Option<Policy>,
    pub(crate) code: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Deterministic,
    /// Legacy; still accepted from older integrations.
    Fallback,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Component {
    Header {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        parameters: Vec<Parameter>,
    },
    Body {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        parameters: Vec<Parameter>,
    },
    Button {
        sub_type: ButtonKind,
        index: ButtonIndex,
        parameters: Vec<Parameter>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonKind {
    QuickReply,
    Url,
    CopyCode,
}

impl ButtonKind {
    /// The `sub_type` as the request spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QuickReply => "quick_reply",
            Self::Url => "url",
            Self::CopyCode => "copy_code",
        }
    }
}

impl Component {
    /// The `type` as the request spells it: `header`, `body` or `button`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Header { .. } => "header",
            Self::Body { .. } => "body",
            Self::Button { .. } => "button",
        }
    }

    pub fn parameters(&self) -> &[Parameter] {
        match self {
            Self::Header { parameters }
            | Self::Body { parameters }
            | Self::Button { parameters, .. } => parameters,
        }
    }
}

impl Parameter {
    /// The `type` as the request spells it (`text`, `currency`, `date_time`, `image`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Currency { .. } => "currency",
            Self::DateTime { .. } => "date_time",
            Self::Image { .. } => "image",
            Self::Document { .. } => "document",
            Self::Video { .. } => "video",
            Self::Location { .. } => "location",
            Self::Payload { .. } => "payload",
            Self::CouponCode { .. } => "coupon_code",
        }
    }

    /// The text it puts in place of its placeholder: a text's, or a currency's or date's
    /// `fallback_value`; `None` for the other kinds.
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Text { text } => Some(text),
            Self::Currency { currency } => Some(&currency.fallback_value),
            Self::DateTime { date_time } => Some(&date_time.fallback_value),
            _ => None,
        }
    }
}

/// A button's position, 0 to 9. Stored as a string, as Meta's On-Premises samples send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ButtonIndex(u8);

impl ButtonIndex {
    pub fn get(self) -> u8 {
        self.0
    }
}

impl Serialize for ButtonIndex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Parameter {
    Text { text: String },
    Currency { currency: Currency },
    DateTime { date_time: DateTime },
    Image { image: Media },
    Document { document: Media },
    Video { video: Media },
    Location { location: Location },
    Payload { payload: String },
    CouponCode { coupon_code: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Currency {
    pub(crate) fallback_value: String,
    pub(crate) code: String,
    pub(crate) amount_1000: i64,
}

/// A date and time: the `fallback_value` shown, and optionally its parts or a timestamp
/// (localised by WhatsApp in older clients).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DateTime {
    pub(crate) fallback_value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) day_of_week: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) year: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) month: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) day_of_month: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hour: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) minute: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) calendar: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) timestamp: Option<i64>,
}

impl Template {
    pub(crate) fn parse(obj: &Obj<'_>) -> Result<Self, Rejection> {
        obj.only(&["namespace", "name", "language", "components"])?;
        let components = match obj.get("components") {
            None => Vec::new(),
            Some(_) => {
                let items = obj.req_array("components", 0, 20, ErrorCode::ParameterValueInvalid)?;
                items.into_iter().map(Component::parse).collect::<Result<_, _>>()?
            }
        };
        Ok(Self {
            namespace: obj.opt_nonblank("namespace", 256)?,
            name: obj.req_text("name", 512)?,
            language: Language::parse(&obj.req_obj("language")?)?,
            components,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The language code (`en_US`).
    pub fn language(&self) -> &str {
        &self.language.code
    }

    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// The uploaded media id of a media parameter, if any.
    pub fn media_id(&self) -> Option<&str> {
        self.components
            .iter()
            .flat_map(|c| match c {
                Component::Header { parameters }
                | Component::Body { parameters }
                | Component::Button { parameters, .. } => parameters.iter(),
            })
            .find_map(|p| match p {
                Parameter::Image { image: m }
                | Parameter::Document { document: m }
                | Parameter::Video { video: m } => m.id(),
                _ => None,
            })
    }
}

impl Language {
    pub(crate) fn parse(obj: &Obj<'_>) -> Result<Self, Rejection> {
        obj.only(&["policy", "code"])?;
        let policy = match obj.str("policy")? {
            None => None,
            Some("deterministic") => Some(Policy::Deterministic),
            Some("fallback") => Some(Policy::Fallback),
            Some(other) => {
                return Err(Rejection::invalid(
                    &obj.at("policy"),
                    format!("'{other}' is not one of deterministic, fallback"),
                ));
            }
        };
        let code = obj.req_text("code", 16)?;
        if !is_language_code(&code) {
            return Err(Rejection::invalid(
                &obj.at("code"),
                format!("'{code}' is not a language code like en or en_US"),
            ));
        }
        Ok(Self { policy, code })
    }
}

/// `en`, `fil`, `en_US`, `zh_Hant`...
fn is_language_code(code: &str) -> bool {
    let (lang, region) = code.split_once('_').map_or((code, None), |(l, r)| (l, Some(r)));
    (2..=3).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_lowercase())
        && region.is_none_or(|r| {
            (2..=4).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// What a component's parameters may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Header,
    Body,
    Button(ButtonKind),
}

impl Slot {
    fn allows(self, kind: &str) -> bool {
        match self {
            Self::Header => matches!(
                kind,
                "text" | "currency" | "date_time" | "image" | "document" | "video" | "location"
            ),
            Self::Body => matches!(kind, "text" | "currency" | "date_time"),
            Self::Button(ButtonKind::QuickReply) => kind == "payload",
            Self::Button(ButtonKind::Url) => kind == "text",
            Self::Button(ButtonKind::CopyCode) => kind == "coupon_code",
        }
    }

    fn allowed(self) -> &'static str {
        match self {
            Self::Header => "text, currency, date_time, image, document, video, location",
            Self::Body => "text, currency, date_time",
            Self::Button(ButtonKind::QuickReply) => "payload",
            Self::Button(ButtonKind::Url) => "text",
            Self::Button(ButtonKind::CopyCode) => "coupon_code",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Header => "a header",
            Self::Body => "a body",
            Self::Button(ButtonKind::QuickReply) => "a quick_reply button",
            Self::Button(ButtonKind::Url) => "a url button",
            Self::Button(ButtonKind::CopyCode) => "a copy_code button",
        }
    }
}

impl Component {
    fn parse((path, value): Item<'_>) -> Result<Self, Rejection> {
        let obj = Obj::of(path, value)?;
        obj.only(&["type", "sub_type", "index", "parameters"])?;
        // Any case, as the Cloud API takes it (clients send "BODY").
        let kind = obj.required("type", obj.str("type")?)?.to_ascii_lowercase();
        match kind.as_str() {
            "header" | "body" => {
                obj.forbid("sub_type", "for header and body components")?;
                obj.forbid("index", "for header and body components")?;
                let slot = if kind == "header" { Slot::Header } else { Slot::Body };
                let parameters = parameters(&obj, slot, false)?;
                Ok(if slot == Slot::Header {
                    Self::Header { parameters }
                } else {
                    Self::Body { parameters }
                })
            }
            "button" => {
                let sub_type = obj.required("sub_type", obj.str("sub_type")?)?.to_ascii_lowercase();
                let sub_type = match sub_type.as_str() {
                    "quick_reply" => ButtonKind::QuickReply,
                    "url" => ButtonKind::Url,
                    "copy_code" => ButtonKind::CopyCode,
                    other => {
                        return Err(Rejection::invalid(
                            &obj.at("sub_type"),
                            format!("'{other}' is not one of quick_reply, url, copy_code"),
                        ));
                    }
                };
                let index = obj.required("index", obj.int_in("index", 0..=9)?)?;
                let parameters = parameters(&obj, Slot::Button(sub_type), true)?;
                Ok(Self::Button {
                    sub_type,
                    index: ButtonIndex(u8::try_from(index).unwrap_or_default()),
                    parameters,
                })
            }
            other => Err(Rejection::invalid(
                &obj.at("type"),
                format!("'{other}' is not one of header, body, button"),
            )),
        }
    }
}

/// `parameters`: an array, or (as Meta's Postman collection sends it) a single object.
fn parameters(obj: &Obj<'_>, slot: Slot, required: bool) -> Result<Vec<Parameter>, Rejection> {
    let path = obj.at("parameters");
    let items: Vec<Item<'_>> = match obj.get("parameters") {
        None if required => return Err(Rejection::missing(&path)),
        None => Vec::new(),
        Some(single @ Value::Object(_)) => vec![(path.clone(), single)],
        Some(Value::Array(items)) => {
            items.iter().enumerate().map(|(i, v)| (format!("{path}[{i}]"), v)).collect()
        }
        Some(other) => return Err(wrong_type(&path, "an array", other)),
    };
    let min = usize::from(required);
    check_count(&path, items.len(), min, 100, ErrorCode::ParameterValueInvalid)?;
    items.into_iter().map(|(p, v)| Parameter::parse(&Obj::of(p, v)?, slot)).collect()
}

impl Parameter {
    fn parse(obj: &Obj<'_>, slot: Slot) -> Result<Self, Rejection> {
        let kind = obj.required("type", obj.str("type")?)?.to_ascii_lowercase();
        let kind = kind.as_str();
        if !slot.allows(kind) {
            let known = Slot::Header.allows(kind) || matches!(kind, "payload" | "coupon_code");
            let problem = if known {
                format!(
                    "'{kind}' parameters are not allowed in {} (allowed: {})",
                    slot.name(),
                    slot.allowed()
                )
            } else {
                format!(
                    "'{kind}' is not a parameter type (allowed in {}: {})",
                    slot.name(),
                    slot.allowed()
                )
            };
            return Err(Rejection::invalid(&obj.at("type"), problem));
        }
        let media = |kind: MediaKind| -> Result<Media, Rejection> {
            let key = kind.name();
            if obj.has(key) {
                obj.only(&["type", key])?;
                Media::parse(&obj.req_obj(key)?, kind, Place::Message)
            } else {
                // The flat form of Meta's Postman collection: the media fields beside `type`.
                let flat: Map<String, Value> = obj
                    .map
                    .iter()
                    .filter(|(k, _)| *k != "type")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if flat.is_empty() {
                    return Err(Rejection::missing(&obj.at(key)));
                }
                let value = Value::Object(flat);
                Media::parse(&Obj::of(obj.path.clone(), &value)?, kind, Place::Message)
            }
        };
        Ok(match kind {
            "text" => {
                obj.only(&["type", "text"])?;
                Self::Text { text: obj.req_text("text", MAX_TEXT_PARAM)? }
            }
            "currency" => {
                obj.only(&["type", "currency"])?;
                Self::Currency { currency: Currency::parse(&obj.req_obj("currency")?)? }
            }
            "date_time" => {
                obj.only(&["type", "date_time"])?;
                Self::DateTime { date_time: DateTime::parse(&obj.req_obj("date_time")?)? }
            }
            "image" => Self::Image { image: media(MediaKind::Image)? },
            "document" => Self::Document { document: media(MediaKind::Document)? },
            "video" => Self::Video { video: media(MediaKind::Video)? },
            "location" => {
                obj.only(&["type", "location"])?;
                Self::Location { location: Location::parse(&obj.req_obj("location")?)? }
            }
            "payload" => {
                obj.only(&["type", "payload"])?;
                Self::Payload { payload: obj.req_text("payload", MAX_PAYLOAD)? }
            }
            _ => {
                obj.only(&["type", "coupon_code"])?;
                Self::CouponCode { coupon_code: obj.req_text("coupon_code", MAX_COUPON_CODE)? }
            }
        })
    }
}

impl Currency {
    pub(crate) fn parse(obj: &Obj<'_>) -> Result<Self, Rejection> {
        obj.only(&["fallback_value", "code", "amount_1000"])?;
        let code = obj.req_text("code", 3)?;
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(Rejection::invalid(
                &obj.at("code"),
                format!("'{code}' is not an ISO 4217 currency code like USD"),
            ));
        }
        Ok(Self {
            fallback_value: obj.req_text("fallback_value", MAX_TEXT_PARAM)?,
            code,
            amount_1000: obj.required("amount_1000", obj.int("amount_1000")?)?,
        })
    }
}

impl DateTime {
    pub(crate) fn parse(obj: &Obj<'_>) -> Result<Self, Rejection> {
        obj.only(&[
            "fallback_value",
            "day_of_week",
            "year",
            "month",
            "day_of_month",
            "hour",
            "minute",
            "calendar",
            "timestamp",
        ])?;
        let mut parts = Self::parts(obj)?;
        parts.fallback_value = obj.req_text("fallback_value", MAX_TEXT_PARAM)?;
        parts.calendar = match obj.str("calendar")? {
            None => None,
            Some(c @ ("GREGORIAN" | "SOLAR_HIJRI")) => Some(c.to_owned()),
            Some(other) => {
                return Err(Rejection::invalid(
                    &obj.at("calendar"),
                    format!("'{other}' is not one of GREGORIAN, SOLAR_HIJRI"),
                ));
            }
        };
        parts.timestamp = obj.int("timestamp")?;
        Ok(parts)
    }

    /// The date parts of `obj` (shared with the deprecated `hsm` form).
    pub(crate) fn parts(obj: &Obj<'_>) -> Result<Self, Rejection> {
        Ok(Self {
            fallback_value: String::new(),
            day_of_week: obj.int_in("day_of_week", 1..=7)?,
            year: obj.int_in("year", 0..=9999)?,
            month: obj.int_in("month", 1..=12)?,
            day_of_month: obj.int_in("day_of_month", 1..=31)?,
            hour: obj.int_in("hour", 0..=23)?,
            minute: obj.int_in("minute", 0..=59)?,
            calendar: None,
            timestamp: None,
        })
    }
}
