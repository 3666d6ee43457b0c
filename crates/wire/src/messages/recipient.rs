//! Who a message goes to: a phone number (the WhatsApp id On-Premises always used) or, since
//! 2026, a **business-scoped user id** (BSUID): the id Meta gives a customer within one business,
//! the only one it gives for a customer who adopted a username and hides their number
//! (`docs/onprem-api.md` section 15).
//!
//! A BSUID is a two-letter country code, a dot, and up to 128 letters and digits
//! (`US.13491208655302741918`); a *parent* BSUID, shared by the businesses of one portfolio, has
//! `ENT.` after the country code (`US.ENT.11815799212886844830`). Both are kept exactly as given
//! (they are case-sensitive opaque ids); a phone number is kept as digits.

use serde::{Deserialize, Deserializer, Serialize};

use super::WaId;
use crate::Rejection;

/// The longest alphanumeric part of a BSUID.
pub const MAX_USER_ID_CHARS: usize = 128;

/// A business-scoped user id, or a parent one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// `CC.` then 1 to 128 alphanumerics, or `CC.ENT.` then the same.
    pub fn parse(field: &str, raw: &str) -> Result<Self, Rejection> {
        let raw = raw.trim();
        let invalid = |why: &str| {
            Rejection::invalid(field, format!("'{raw}' is not a business-scoped user id: {why}"))
        };
        let Some((country, rest)) = raw.split_once('.') else {
            return Err(invalid("it must be a country code, a dot and an id"));
        };
        if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(invalid("it must start with a two-letter country code (US.)"));
        }
        let id = rest.strip_prefix("ENT.").unwrap_or(rest);
        if id.is_empty() || id.len() > MAX_USER_ID_CHARS {
            return Err(invalid("the id after the country code must have 1 to 128 characters"));
        }
        if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid("the id after the country code must be letters and digits"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Whether `raw` has a BSUID's shape (a country code and a dot first), to tell it from a
    /// phone number before parsing it.
    pub fn looks_like(raw: &str) -> bool {
        let raw = raw.trim().as_bytes();
        raw.len() > 3
            && raw[0].is_ascii_alphabetic()
            && raw[1].is_ascii_alphabetic()
            && raw[2] == b'.'
    }

    /// A parent BSUID (`CC.ENT.…`), shared by the businesses of a portfolio.
    pub fn is_parent(&self) -> bool {
        self.0.get(2..7) == Some(".ENT.")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse("user_id", &raw).map_err(serde::de::Error::custom)
    }
}

/// A message's recipient, as the integration named it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Recipient {
    /// A phone number, as digits.
    Phone(WaId),
    /// A business-scoped user id (or a parent one).
    User(UserId),
}

impl Recipient {
    /// A BSUID when it has a BSUID's shape, otherwise a phone number; the error names `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, Rejection> {
        if UserId::looks_like(raw) {
            UserId::parse(field, raw).map(Self::User)
        } else {
            WaId::parse(field, raw).map(Self::Phone)
        }
    }

    /// As stored and shown: the digits, or the BSUID as given.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Phone(phone) => phone.as_str(),
            Self::User(user) => user.as_str(),
        }
    }

    pub fn phone(&self) -> Option<&WaId> {
        match self {
            Self::Phone(phone) => Some(phone),
            Self::User(_) => None,
        }
    }

    pub fn user_id(&self) -> Option<&UserId> {
        match self {
            Self::User(user) => Some(user),
            Self::Phone(_) => None,
        }
    }

    /// IEEE CRC-32 of the recipient as given, the input of shard routing: messages to one
    /// recipient (by the value the integration uses) share a shard, so they keep their order.
    pub fn crc32(&self) -> u32 {
        routing_crc(self.as_str())
    }
}

/// The shard-routing key of a customer's id as stored (digits, or a BSUID as given): the same
/// as [`Recipient::crc32`] of the recipient it was parsed into.
pub fn routing_crc(id: &str) -> u32 {
    crc32fast::hash(id.as_bytes())
}

impl From<WaId> for Recipient {
    fn from(phone: WaId) -> Self {
        Self::Phone(phone)
    }
}

impl<'de> Deserialize<'de> for Recipient {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse("to", &raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_business_scoped_ids_from_phone_numbers() {
        let user = Recipient::parse("to", "US.13491208655302741918").unwrap();
        assert_eq!(user.as_str(), "US.13491208655302741918");
        assert!(user.phone().is_none());
        let parent = Recipient::parse("to", "US.ENT.11815799212886844830").unwrap();
        assert!(parent.user_id().unwrap().is_parent());
        assert!(!user.user_id().unwrap().is_parent());
        let phone = Recipient::parse("to", "+1 631 555 1234").unwrap();
        assert_eq!(phone.as_str(), "16315551234");
        assert_eq!(phone.crc32(), WaId::parse("to", "16315551234").unwrap().crc32());
        let longest = format!("BR.{}", "a1".repeat(64));
        assert!(Recipient::parse("to", &longest).is_ok());
    }

    #[test]
    fn refuses_what_has_neither_form_naming_the_field() {
        for bad in [
            "us.123",
            "USA.123",
            "U.123",
            "US.",
            "US.ENT.",
            "US.12-34",
            "US.12.34",
            "US.ENT.12_3",
            &format!("US.{}", "1".repeat(129)),
            "hello",
        ] {
            let error = Recipient::parse("to", bad).unwrap_err();
            assert!(error.to_string().contains("to"), "{bad}: {error}");
        }
    }
}
