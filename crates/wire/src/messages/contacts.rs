//! `contacts` messages: one or more vCard-like contacts with every nested object of the seed
//! (addresses, birthday, emails, name, org, phones, urls) and the legacy `ims` of Meta's
//! On-Premises Postman collection.

use serde::Serialize;

use super::WaId;
use super::field::{Obj, check_count};
use crate::{ErrorCode, Rejection};

/// The most contacts one message carries (as the Cloud API; On-Premises sources are silent).
pub const MAX_CONTACTS: usize = 257;
const MAX_FIELD: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) addresses: Vec<Address>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) birthday: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) emails: Vec<Email>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) ims: Vec<Im>,
    pub(crate) name: Name,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) org: Option<Org>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) phones: Vec<Phone>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) urls: Vec<Url>,
}

/// A struct whose fields are all optional strings: declared once with its JSON keys.
macro_rules! strings {
    ($(#[$doc:meta])* $name:ident { $($field:ident: $key:literal),* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
        pub struct $name {
            $(
                #[serde(rename = $key, skip_serializing_if = "Option::is_none")]
                pub(crate) $field: Option<String>,
            )*
        }

        impl $name {
            fn parse(obj: &Obj<'_>) -> Result<Self, Rejection> {
                obj.only(&[$($key),*])?;
                Ok(Self { $($field: obj.text($key, MAX_FIELD)?,)* })
            }
        }
    };
}

strings!(Address {
    street: "street",
    city: "city",
    state: "state",
    zip: "zip",
    country: "country",
    country_code: "country_code",
    kind: "type"
});
strings!(Email { email: "email", kind: "type" });
strings!(Org { company: "company", department: "department", title: "title" });
strings!(Url { url: "url", kind: "type" });
strings!(
    /// An instant-messaging handle (legacy On-Premises vCard field).
    Im { service: "service", user_id: "user_id" }
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Name {
    pub(crate) formatted_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) middle_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) suffix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) prefix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phone {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) phone: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) wa_id: Option<WaId>,
}

pub(crate) fn parse(top: &Obj<'_>) -> Result<Vec<Contact>, Rejection> {
    let items = top.req_array("contacts", 1, MAX_CONTACTS, ErrorCode::ParameterValueInvalid)?;
    items.into_iter().map(|(path, value)| Contact::parse(&Obj::of(path, value)?)).collect()
}

impl Contact {
    fn parse(obj: &Obj<'_>) -> Result<Self, Rejection> {
        obj.only(&["addresses", "birthday", "emails", "ims", "name", "org", "phones", "urls"])?;
        let birthday = obj.str("birthday")?.map(str::to_owned);
        if let Some(b) = &birthday {
            check_date(&obj.at("birthday"), b)?;
        }
        Ok(Self {
            addresses: list(obj, "addresses", Address::parse)?,
            birthday,
            emails: list(obj, "emails", Email::parse)?,
            ims: list(obj, "ims", Im::parse)?,
            name: Name::parse(&obj.req_obj("name")?)?,
            org: obj.obj("org")?.map(|o| Org::parse(&o)).transpose()?,
            phones: list(obj, "phones", Phone::parse)?,
            urls: list(obj, "urls", Url::parse)?,
        })
    }
}

fn list<T>(
    obj: &Obj<'_>,
    key: &str,
    each: fn(&Obj<'_>) -> Result<T, Rejection>,
) -> Result<Vec<T>, Rejection> {
    let items = obj.array(key)?.unwrap_or_default();
    check_count(&obj.at(key), items.len(), 0, 20, ErrorCode::ParameterValueInvalid)?;
    items.into_iter().map(|(path, value)| each(&Obj::of(path, value)?)).collect()
}

impl Name {
    fn parse(obj: &Obj<'_>) -> Result<Self, Rejection> {
        const OTHERS: [&str; 5] = ["first_name", "last_name", "middle_name", "suffix", "prefix"];
        obj.only(&[
            "formatted_name",
            "first_name",
            "last_name",
            "middle_name",
            "suffix",
            "prefix",
        ])?;
        let name = Self {
            formatted_name: obj.req_text("formatted_name", MAX_FIELD)?,
            first_name: obj.text("first_name", MAX_FIELD)?,
            last_name: obj.text("last_name", MAX_FIELD)?,
            middle_name: obj.text("middle_name", MAX_FIELD)?,
            suffix: obj.text("suffix", MAX_FIELD)?,
            prefix: obj.text("prefix", MAX_FIELD)?,
        };
        let others =
            [&name.first_name, &name.last_name, &name.middle_name, &name.suffix, &name.prefix];
        if others.iter().all(|o| o.as_deref().is_none_or(|s| s.trim().is_empty())) {
            return Err(Rejection::new(
                ErrorCode::RequiredParameterMissing,
                format!(
                    "{}: at least one of '{}' is required along with 'formatted_name'",
                    obj.path,
                    OTHERS.join("', '")
                ),
            ));
        }
        Ok(name)
    }
}

impl Phone {
    fn parse(obj: &Obj<'_>) -> Result<Self, Rejection> {
        // The seed's own example spells it `wa-id`; the field tables say `wa_id`.
        obj.only(&["phone", "type", "wa_id", "wa-id"])?;
        if obj.has("wa_id") && obj.has("wa-id") {
            return Err(super::field::not_allowed(&obj.at("wa-id"), "together with 'wa_id'"));
        }
        let key = if obj.has("wa-id") { "wa-id" } else { "wa_id" };
        let wa_id = obj.str(key)?.map(|raw| WaId::parse(&obj.at(key), raw)).transpose()?;
        Ok(Self { phone: obj.text("phone", MAX_FIELD)?, kind: obj.text("type", MAX_FIELD)?, wa_id })
    }
}

/// `YYYY-MM-DD`, a real calendar date.
fn check_date(path: &str, date: &str) -> Result<(), Rejection> {
    let invalid = || Rejection::invalid(path, format!("'{date}' is not a YYYY-MM-DD date"));
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return Err(invalid()) };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(invalid());
    }
    let number = |s: &str| {
        if s.bytes().all(|b| b.is_ascii_digit()) { s.parse::<u32>().ok() } else { None }
    };
    let (Some(y), Some(m), Some(d)) = (number(y), number(m), number(d)) else {
        return Err(invalid());
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(invalid()),
    };
    if d == 0 || d > days {
        return Err(invalid());
    }
    Ok(())
}
