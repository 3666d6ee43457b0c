//! `POST /v1/contacts` (`docs/onprem-api.md` section 4): the request, phone number normalisation
//! as WhatsApp does it, and the per-number answer.
//!
//! A malformed request is refused as a whole, naming the field (`contacts[2]: expected a
//! string`); a well-formed request whose numbers are not phone numbers is answered, each such
//! number with `"status": "invalid"`, as On-Premises did.

use serde::Serialize;
use serde_json::Value;

use crate::messages::kind;
use crate::{ErrorCode, Rejection};

/// The fewest and most digits a number may have with its country code (E.164 allows 15; the
/// shortest numbers in use, such as Niue's, have 7 with the country code).
pub const MIN_DIGITS: usize = 7;
pub const MAX_DIGITS: usize = 15;

/// How long a check is reused (On-Premises: 7 days), in seconds.
pub const CHECK_CACHE_SECS: i64 = 7 * 24 * 3600;

/// `blocking`: whether the caller waits for checks to finish (`wait`) or takes `processing`
/// for numbers not yet known (`no_wait`, the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocking {
    Wait,
    NoWait,
}

/// A validated `/v1/contacts` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactsRequest {
    pub blocking: Blocking,
    /// Check again even if a recent check is cached.
    pub force_check: bool,
    /// The numbers in request order, each as given and normalised.
    pub contacts: Vec<ContactInput>,
}

/// One entry of `contacts[]`: the input exactly as sent, and the number it normalises to, or
/// why it is not a phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactInput {
    pub input: String,
    pub number: Result<PhoneNumber, NotANumber>,
}

/// Why an input is not a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotANumber {
    #[error("'{0}' is not allowed in a phone number")]
    Character(char),
    #[error("no digits")]
    NoDigits,
    #[error("must start with a country code, which never starts with 0")]
    LeadingZero,
    #[error("has {0} digits; a number with its country code has {MIN_DIGITS} to {MAX_DIGITS}")]
    Length(usize),
}

/// A phone number with its country code, digits only: the form WhatsApp ids take.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Normalises a number as WhatsApp does: spaces, dashes, dots and parentheses are dropped,
    /// and a leading `+` says the number starts with its country code. Without the `+` the
    /// number is also read as starting with its country code (On-Premises v2.43+ answered
    /// `wa_id` = the input's digits); a business country code for local numbers would plug in
    /// here. Country codes never start with 0, so a leading 0 (a national trunk prefix) is
    /// refused rather than guessed at.
    pub fn normalise(raw: &str) -> Result<Self, NotANumber> {
        let trimmed = raw.trim();
        let rest = trimmed.strip_prefix('+').unwrap_or(trimmed);
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                other => return Err(NotANumber::Character(other)),
            }
        }
        if digits.is_empty() {
            return Err(NotANumber::NoDigits);
        }
        if digits.starts_with('0') {
            return Err(NotANumber::LeadingZero);
        }
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits.len()) {
            return Err(NotANumber::Length(digits.len()));
        }
        Ok(Self(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `status` of one contact. `processing` and `failed` exist in On-Premises but never arise
/// here: checks answer at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactStatus {
    Valid,
    Invalid,
}

/// One entry of the answer's `contacts[]`; `wa_id` only for valid numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactResult {
    pub input: String,
    pub status: ContactStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
}

impl ContactResult {
    pub fn valid(input: &str, wa_id: &str) -> Self {
        Self {
            input: input.to_owned(),
            status: ContactStatus::Valid,
            wa_id: Some(wa_id.to_owned()),
        }
    }

    pub fn invalid(input: &str) -> Self {
        Self { input: input.to_owned(), status: ContactStatus::Invalid, wa_id: None }
    }
}

impl ContactsRequest {
    /// Parses `{"blocking","force_check","contacts":[...]}`; unknown fields are refused by name.
    pub fn parse(request: &Value) -> Result<Self, Rejection> {
        let object = request.as_object().ok_or_else(|| {
            Rejection::new(ErrorCode::InvalidRequest, "request body must be a JSON object")
        })?;
        let allowed = ["blocking", "force_check", "contacts"];
        if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(Rejection::new(
                ErrorCode::ParameterNotRequired,
                format!("Parameter '{unknown}' is not a known parameter"),
            ));
        }
        let blocking = match object.get("blocking") {
            None | Some(Value::Null) => Blocking::NoWait,
            Some(Value::String(s)) if s == "wait" => Blocking::Wait,
            Some(Value::String(s)) if s == "no_wait" => Blocking::NoWait,
            Some(Value::String(s)) => {
                return Err(Rejection::invalid(
                    "blocking",
                    format!("'{s}' is not one of wait, no_wait"),
                ));
            }
            Some(other) => {
                return Err(Rejection::invalid(
                    "blocking",
                    format!("expected a string, got {}", kind(other)),
                ));
            }
        };
        let force_check = match object.get("force_check") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(Rejection::invalid(
                    "force_check",
                    format!("expected true or false, got {}", kind(other)),
                ));
            }
        };
        let list = match object.get("contacts") {
            None | Some(Value::Null) => return Err(Rejection::missing("contacts")),
            Some(Value::Array(list)) => list,
            Some(other) => {
                return Err(Rejection::invalid(
                    "contacts",
                    format!("expected an array of phone numbers, got {}", kind(other)),
                ));
            }
        };
        if list.is_empty() {
            return Err(Rejection::invalid("contacts", "must list at least one phone number"));
        }
        let contacts = list
            .iter()
            .enumerate()
            .map(|(i, entry)| match entry {
                Value::String(input) => {
                    Ok(ContactInput { input: input.clone(), number: PhoneNumber::normalise(input) })
                }
                other => Err(Rejection::invalid(
                    &format!("contacts[{i}]"),
                    format!("expected a phone number as a string, got {}", kind(other)),
                )),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { blocking, force_check, contacts })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn number(raw: &str) -> Result<String, String> {
        PhoneNumber::normalise(raw).map(|n| n.as_str().to_owned()).map_err(|e| e.to_string())
    }

    #[test]
    fn normalisation() {
        assert_eq!(number("16315551000"), Ok("16315551000".into()));
        assert_eq!(number("+1 631 555 1001"), Ok("16315551001".into()));
        assert_eq!(number("+1 (631) 555-1002"), Ok("16315551002".into()));
        assert_eq!(number(" +44.20.7946.0958 "), Ok("442079460958".into()));
        assert_eq!(number("+683 1234"), Ok("6831234".into()), "the shortest numbers");
        assert!(number("").is_err());
        assert!(number("+").is_err());
        assert!(number("06 12 34 56 78").unwrap_err().contains("country code"));
        assert!(number("+1 631 555 1000 12345").unwrap_err().contains("16 digits"));
        assert!(number("12345").unwrap_err().contains("5 digits"));
        assert!(number("1631555100a").unwrap_err().contains("'a'"));
        assert!(number("1+6315551000").unwrap_err().contains("'+'"), "+ only in front");
        assert!(number("++16315551000").is_err());
    }

    #[test]
    fn requests() {
        let r = ContactsRequest::parse(&json!({"contacts": ["+1 631 555 1001", "x"]})).unwrap();
        assert_eq!((r.blocking, r.force_check), (Blocking::NoWait, false));
        assert_eq!(r.contacts[0].input, "+1 631 555 1001");
        assert_eq!(r.contacts[0].number.as_ref().unwrap().as_str(), "16315551001");
        assert!(r.contacts[1].number.is_err());
        let r = ContactsRequest::parse(
            &json!({"blocking": "wait", "force_check": true, "contacts": ["16315551000"]}),
        )
        .unwrap();
        assert_eq!((r.blocking, r.force_check), (Blocking::Wait, true));
    }

    #[test]
    fn refusals_name_the_field() {
        let refuse = |body: Value| ContactsRequest::parse(&body).unwrap_err();
        let r = refuse(json!({}));
        assert_eq!(
            (r.code, r.details.as_str()),
            (ErrorCode::RequiredParameterMissing, "Missing mandatory parameter 'contacts'")
        );
        let r = refuse(json!({"contacts": ["1631555100", 42]}));
        assert_eq!(r.code, ErrorCode::ParameterValueInvalid);
        assert!(r.details.starts_with("contacts[1]: "), "{}", r.details);
        assert!(refuse(json!({"contacts": "16315551000"})).details.starts_with("contacts: "));
        assert!(refuse(json!({"contacts": []})).details.starts_with("contacts: "));
        assert!(
            refuse(json!({"contacts": ["1"], "blocking": "later"}))
                .details
                .starts_with("blocking: ")
        );
        assert!(
            refuse(json!({"contacts": ["1"], "force_check": "yes"}))
                .details
                .starts_with("force_check: ")
        );
        let r = refuse(json!({"contacts": ["1"], "extra": 1}));
        assert_eq!(r.code, ErrorCode::ParameterNotRequired);
        assert!(r.details.contains("'extra'"));
    }

    #[test]
    fn answers_serialise_as_on_premises() {
        assert_eq!(
            serde_json::to_value([
                ContactResult::valid("+1 631 555 1001", "16315551001"),
                ContactResult::invalid("x")
            ])
            .unwrap(),
            json!([{"input": "+1 631 555 1001", "status": "valid", "wa_id": "16315551001"}, {"input": "x", "status": "invalid"}])
        );
    }
}
