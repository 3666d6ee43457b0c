//! Checks shared by the settings bodies: a string field within limits, an email address, an
//! E.164 phone number, a flag. Each refusal names the field by its path (1009), or the missing
//! one (1008).

use serde_json::{Map, Value};

use crate::Rejection;

/// The object at `value`, or a refusal naming `field`.
pub fn object<'a>(field: &str, value: &'a Value) -> Result<&'a Map<String, Value>, Rejection> {
    value.as_object().ok_or_else(|| Rejection::invalid(field, "expected a JSON object"))
}

/// The string `obj[name]` of `min` to `max` characters (`field` is its path in the body).
pub fn text(
    obj: &Map<String, Value>,
    name: &str,
    field: &str,
    min: usize,
    max: usize,
) -> Result<String, Rejection> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(Rejection::missing(field)),
        Some(Value::String(text)) => {
            let chars = text.chars().count();
            if chars < min || chars > max {
                Err(Rejection::invalid(field, format!("{min} to {max} characters, got {chars}")))
            } else {
                Ok(text.clone())
            }
        }
        Some(_) => Err(Rejection::invalid(field, "expected a string")),
    }
}

/// Like [`text`], but absent is `None`.
pub fn optional_text(
    obj: &Map<String, Value>,
    name: &str,
    field: &str,
    max: usize,
) -> Result<Option<String>, Rejection> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => text(obj, name, field, 0, max).map(Some),
    }
}

/// An address as mail servers take one: something before and after a single `@`, a dot in
/// the domain, no spaces.
pub fn is_email(text: &str) -> bool {
    text.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
    }) && !text.chars().any(char::is_whitespace)
}

/// A phone number in E.164 form: `+`, then 2 to 15 digits, the first not 0 (the pattern of the
/// Cloud API's description, `^\+[1-9]\d{1,14}$`).
pub fn is_e164(text: &str) -> bool {
    text.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

/// A flag given as a JSON boolean or as `"true"`/`"false"` (how Meta's Postman collection
/// writes some of them).
pub fn flag(value: &Value, field: &str) -> Result<bool, Rejection> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        _ => Err(Rejection::invalid(field, "expected true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_and_addresses() {
        assert!(is_e164("+913854559033") && is_e164("+12"));
        for bad in ["913854559033", "+0123", "+1", "+1234567890123456", "+12 34"] {
            assert!(!is_e164(bad), "{bad}");
        }
        assert!(is_email("a@b.example") && !is_email("a@b") && !is_email("a b@c.example"));
    }
}
