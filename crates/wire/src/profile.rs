//! The account's profile settings as On-Premises took them (`docs/onprem-api.md` section 13):
//! `/v1/settings/profile/about` (`{"text"}`, at most 139 characters),
//! `/v1/settings/business/profile` (address, description, email, vertical, websites; a POST
//! changes the fields it names) and `/v1/settings/account/two-step` (`{"pin"}`, six digits).
//! A refusal names the field (1009), or the missing one (1008).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Rejection;
use crate::fields::is_email;

/// The longest About text.
pub const MAX_ABOUT: usize = 139;
pub const MAX_ADDRESS: usize = 256;
/// On-Premises' reference says 256 for the description; a newer page says 512. 256 is what
/// every On-Premises version accepted.
pub const MAX_DESCRIPTION: usize = 256;
pub const MAX_EMAIL: usize = 128;
pub const MAX_WEBSITES: usize = 2;
pub const MAX_WEBSITE: usize = 256;

/// The business verticals On-Premises accepted, as it spelled them.
pub const VERTICALS: [&str; 17] = [
    "Automotive",
    "Beauty, Spa and Salon",
    "Clothing and Apparel",
    "Education",
    "Entertainment",
    "Event Planning and Service",
    "Finance and Banking",
    "Food and Grocery",
    "Public Service",
    "Hotel and Lodging",
    "Medical and Health",
    "Non-profit",
    "Professional Services",
    "Shopping and Retail",
    "Travel and Transportation",
    "Restaurant",
    "Other",
];

/// The About text of a `PATCH /v1/settings/profile/about` body.
pub fn about(body: &Value) -> Result<String, Rejection> {
    let text = match body.get("text") {
        None | Some(Value::Null) => return Err(Rejection::missing("text")),
        Some(Value::String(text)) => text,
        Some(_) => return Err(Rejection::invalid("text", "expected a string")),
    };
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_ABOUT {
        return Err(Rejection::invalid(
            "text",
            format!("1 to {MAX_ABOUT} characters, got {chars}"),
        ));
    }
    Ok(text.clone())
}

/// `GET /v1/settings/profile/about`'s `settings` object.
pub fn about_view(text: &str) -> Value {
    json!({ "profile": { "about": { "text": text } } })
}

/// The business profile (`/v1/settings/business/profile`) as it is kept: each field once set
/// (an empty string clears a text field but keeps it set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertical: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websites: Option<Vec<String>>,
}

/// Why a value is not one a field takes.
type Why = String;

impl BusinessProfile {
    /// The profile after a `POST /v1/settings/business/profile` body: the fields it names
    /// replace these; the others stay.
    pub fn changed_by(&self, body: &Value) -> Result<Self, Rejection> {
        let Some(fields) = body.as_object() else {
            return Err(Rejection::invalid("profile", "expected a JSON object"));
        };
        let mut profile = self.clone();
        for (field, value) in fields {
            match field.as_str() {
                "address" => profile.address = Some(text_field(field, value, MAX_ADDRESS, none)?),
                "description" => {
                    profile.description = Some(text_field(field, value, MAX_DESCRIPTION, none)?);
                }
                "email" => profile.email = Some(text_field(field, value, MAX_EMAIL, email)?),
                "vertical" => {
                    let vertical = text_field(field, value, usize::MAX, vertical)?;
                    if vertical.is_empty() && profile.vertical.is_some() {
                        return Err(Rejection::invalid(field, "cannot be set back to empty"));
                    }
                    profile.vertical = Some(vertical);
                }
                "websites" => profile.websites = Some(websites(value)?),
                other => {
                    return Err(Rejection::invalid(
                        other,
                        "not a business profile field (address, description, email, vertical, websites)",
                    ));
                }
            }
        }
        Ok(profile)
    }

    /// `GET /v1/settings/business/profile`'s `settings` object: every field, empty if never
    /// set.
    pub fn view(&self) -> Value {
        let text = |field: &Option<String>| field.clone().unwrap_or_default();
        json!({ "business": { "profile": {
            "address": text(&self.address),
            "description": text(&self.description),
            "email": text(&self.email),
            "vertical": text(&self.vertical),
            "websites": self.websites.clone().unwrap_or_default(),
        } } })
    }
}

/// A string field of at most `max` characters that `check` accepts (empty clears it).
fn text_field(
    field: &str,
    value: &Value,
    max: usize,
    check: impl Fn(&str) -> Result<(), Why>,
) -> Result<String, Rejection> {
    let Value::String(text) = value else {
        return Err(Rejection::invalid(field, "expected a string"));
    };
    let chars = text.chars().count();
    if chars > max {
        return Err(Rejection::invalid(field, format!("at most {max} characters, got {chars}")));
    }
    if !text.is_empty() {
        check(text).map_err(|why| Rejection::invalid(field, why))?;
    }
    Ok(text.clone())
}

fn none(_: &str) -> Result<(), Why> {
    Ok(())
}

fn email(text: &str) -> Result<(), Why> {
    if is_email(text) { Ok(()) } else { Err("not a valid email address".to_owned()) }
}

fn vertical(text: &str) -> Result<(), Why> {
    if VERTICALS.contains(&text) { Ok(()) } else { Err(format!("one of {}", VERTICALS.join("; "))) }
}

fn websites(value: &Value) -> Result<Vec<String>, Rejection> {
    let Some(sites) = value.as_array() else {
        return Err(Rejection::invalid("websites", "expected an array of strings"));
    };
    if sites.len() > MAX_WEBSITES {
        return Err(Rejection::invalid("websites", format!("at most {MAX_WEBSITES} websites")));
    }
    let url = |url: &str| {
        if url.starts_with("http://") || url.starts_with("https://") {
            Ok(())
        } else {
            Err("a URL starting with http:// or https://".to_owned())
        }
    };
    sites
        .iter()
        .enumerate()
        .map(|(i, site)| text_field(&format!("websites[{i}]"), site, MAX_WEBSITE, url))
        .collect()
}

/// The PIN of a `POST /v1/settings/account/two-step` body: six digits.
pub fn two_step_pin(body: &Value) -> Result<String, Rejection> {
    match body.get("pin") {
        None | Some(Value::Null) => Err(Rejection::missing("pin")),
        Some(Value::String(pin)) if pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(pin.clone())
        }
        Some(_) => Err(Rejection::invalid("pin", "six digits, as a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn about_is_1_to_139_characters() {
        assert_eq!(about(&json!({"text": "é".repeat(139)})).unwrap().chars().count(), 139);
        let refused = |body: Value| about(&body).unwrap_err();
        assert_eq!(refused(json!({})).code, ErrorCode::RequiredParameterMissing);
        assert!(refused(json!({"text": "é".repeat(140)})).details.starts_with("text: 1 to 139"));
        assert!(refused(json!({"text": ""})).details.starts_with("text:"));
        assert_eq!(refused(json!({"text": 5})).code, ErrorCode::ParameterValueInvalid);
    }

    #[test]
    fn a_business_profile_post_changes_the_fields_it_names() {
        let first = BusinessProfile::default()
            .changed_by(&json!({"address": "1 Main St", "vertical": "Restaurant",
                "websites": ["https://example.com"]}))
            .unwrap();
        let second = first.changed_by(&json!({"email": "hi@example.com"})).unwrap();
        assert_eq!(second.address.as_deref(), Some("1 Main St"));
        assert_eq!(second.email.as_deref(), Some("hi@example.com"));
        let view = second.view();
        assert_eq!(view["business"]["profile"]["description"], "");
        assert_eq!(view["business"]["profile"]["websites"], json!(["https://example.com"]));
        let refused = |body: Value| second.changed_by(&body).unwrap_err().details;
        for (body, field) in [
            (json!({"address": "a".repeat(257)}), "address"),
            (json!({"description": "a".repeat(257)}), "description"),
            (json!({"email": format!("{}@example.com", "a".repeat(117))}), "email"),
            (json!({"email": "not-an-address"}), "email"),
            (json!({"vertical": "Bakery"}), "vertical"),
            (json!({"vertical": ""}), "vertical"),
            (json!({"websites": ["https://a", "https://b", "https://c"]}), "websites"),
            (json!({"websites": ["ftp://a"]}), "websites[0]"),
            (json!({"websites": [format!("https://{}", "a".repeat(249))]}), "websites[0]"),
            (json!({"phone": "1"}), "phone"),
            (json!([1]), "profile"),
        ] {
            assert!(refused(body.clone()).starts_with(&format!("{field}:")), "{body}");
        }
        assert!(second.changed_by(&json!({"email": "a".repeat(116) + "@example.com"})).is_ok());
    }

    #[test]
    fn a_pin_is_six_digits() {
        assert_eq!(two_step_pin(&json!({"pin": "012345"})).unwrap(), "012345");
        for bad in [
            json!({"pin": "12345"}),
            json!({"pin": "1234567"}),
            json!({"pin": 123456}),
            json!({"pin": "12a456"}),
        ] {
            assert_eq!(two_step_pin(&bad).unwrap_err().code, ErrorCode::ParameterValueInvalid);
        }
        assert_eq!(two_step_pin(&json!({})).unwrap_err().code, ErrorCode::RequiredParameterMissing);
    }
}
