//! `POST /v1/settings/business/compliance_info`: the business's compliance details that Indian
//! law requires on its profile. On-Premises' Postman collection names the fields; the limits
//! are those of the Cloud API's description (`BusinessComplianceInfoUpdateRequest`): a name of
//! 2 to 128 characters, an entity type (either spelling: `Private Company` as On-Premises wrote
//! it, `PRIVATE_COMPANY` as Cloud does), a custom type (at most 1,024 characters, required for
//! `Other`), `is_registered` only for `Other` and `Partnership`, a grievance officer (name and
//! email required) and customer care (email required), every phone number in E.164 form.
//! A POST replaces the whole record.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Rejection;
use crate::fields::{flag, is_e164, is_email, object, optional_text, text};

/// The entity types, in the Cloud API's spelling.
pub const ENTITY_TYPES: [&str; 6] = [
    "LIMITED_LIABILITY_PARTNERSHIP",
    "SOLE_PROPRIETORSHIP",
    "PARTNERSHIP",
    "PUBLIC_COMPANY",
    "PRIVATE_COMPANY",
    "OTHER",
];
pub const MAX_NAME: usize = 128;
pub const MAX_CUSTOM_TYPE: usize = 1024;
pub const MAX_EMAIL: usize = 128;

/// The business's compliance record, as it is kept and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceInfo {
    pub entity_name: String,
    /// As given (either spelling).
    pub entity_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type_custom: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_registered: Option<bool>,
    pub customer_care_details: Contact,
    pub grievance_officer_details: Contact,
}

/// How to reach customer care or the grievance officer (who has a name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landline_number: Option<String>,
}

/// The record a valid body describes.
pub fn compliance_info(body: &Value) -> Result<ComplianceInfo, Rejection> {
    let body = object("compliance_info", body)?;
    for name in body.keys() {
        if !matches!(
            name.as_str(),
            "entity_name"
                | "entity_type"
                | "entity_type_custom"
                | "is_registered"
                | "customer_care_details"
                | "grievance_officer_details"
                | "messaging_product"
        ) {
            return Err(Rejection::invalid(name, "not a compliance info field"));
        }
    }
    let entity_name = text(body, "entity_name", "entity_name", 2, MAX_NAME)?;
    let entity_type = text(body, "entity_type", "entity_type", 1, 64)?;
    let kind = entity_type.trim().to_ascii_uppercase().replace([' ', '-'], "_");
    if !ENTITY_TYPES.contains(&kind.as_str()) {
        return Err(Rejection::invalid(
            "entity_type",
            "one of Limited liability partnership, Sole proprietorship, Partnership, Public \
             Company, Private Company, Other",
        ));
    }
    let custom = optional_text(body, "entity_type_custom", "entity_type_custom", MAX_CUSTOM_TYPE)?;
    if kind == "OTHER" && custom.as_deref().unwrap_or_default().is_empty() {
        return Err(Rejection::missing("entity_type_custom"));
    }
    let registered = match body.get("is_registered") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let registered = flag(value, "is_registered")?;
            if kind != "OTHER" && kind != "PARTNERSHIP" {
                return Err(Rejection::invalid(
                    "is_registered",
                    "only for the entity types Other and Partnership",
                ));
            }
            Some(registered)
        }
    };
    let care = contact(body, "customer_care_details", false)?;
    let officer = contact(body, "grievance_officer_details", true)?;

    Ok(ComplianceInfo {
        entity_name,
        entity_type,
        entity_type_custom: custom,
        is_registered: registered,
        customer_care_details: care,
        grievance_officer_details: officer,
    })
}

/// A contact object: an email (required), a mobile and a landline number, and for the
/// grievance officer a name (required).
fn contact(body: &Map<String, Value>, name: &str, named: bool) -> Result<Contact, Rejection> {
    let value = body.get(name).ok_or_else(|| Rejection::missing(name))?;
    let obj = object(name, value)?;
    for (key, _) in obj {
        let known = matches!(key.as_str(), "email" | "mobile_number" | "landline_number")
            || (named && key == "name");
        if !known {
            return Err(Rejection::invalid(&format!("{name}.{key}"), "not a contact field"));
        }
    }
    let person = match named {
        true => Some(text(obj, "name", &format!("{name}.name"), 1, MAX_NAME)?),
        false => None,
    };
    let field = format!("{name}.email");
    let email = text(obj, "email", &field, 1, MAX_EMAIL)?;
    if !is_email(&email) {
        return Err(Rejection::invalid(&field, "not a valid email address"));
    }
    let phone = |number: &str| -> Result<Option<String>, Rejection> {
        let field = format!("{name}.{number}");
        let phone = optional_text(obj, number, &field, 20)?;
        if phone.as_deref().is_some_and(|phone| !is_e164(phone)) {
            return Err(Rejection::invalid(
                &field,
                "a phone number with its country code, like +913854559033",
            ));
        }
        Ok(phone)
    };
    Ok(Contact {
        name: person,
        email,
        mobile_number: phone("mobile_number")?,
        landline_number: phone("landline_number")?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ErrorCode;

    fn valid() -> Value {
        json!({
            "entity_name": "Lucky Shrub Private Limited",
            "entity_type": "Partnership",
            "entity_type_custom": "Limited Liability Partnership",
            "is_registered": "true",
            "customer_care_details": {"email": "care@luckyshrub.example",
                "landline_number": "+913857614343", "mobile_number": "+913854559033"},
            "grievance_officer_details": {"name": "Chandravati P.",
                "email": "chandravati@luckyshrub.example", "mobile_number": "+913854559033"}
        })
    }

    #[test]
    fn a_valid_record_is_kept_with_its_flag_as_a_boolean() {
        let record = serde_json::to_value(compliance_info(&valid()).unwrap()).unwrap();
        assert_eq!(record["is_registered"], true);
        assert_eq!(record["grievance_officer_details"]["name"], "Chandravati P.");
        let mut cloud = valid();
        cloud["entity_type"] = json!("PARTNERSHIP");
        assert!(compliance_info(&cloud).is_ok());
    }

    #[test]
    fn each_limit_names_its_field() {
        let refused = |pointer: &str, value: Value| {
            let mut body = valid();
            *body.pointer_mut(pointer).unwrap() = value;
            compliance_info(&body).unwrap_err()
        };
        let cases = [
            ("/entity_name", json!("a"), "entity_name"),
            ("/entity_name", json!("a".repeat(129)), "entity_name"),
            ("/entity_type", json!("Cooperative"), "entity_type"),
            ("/is_registered", json!("yes"), "is_registered"),
            ("/customer_care_details/email", json!("care"), "customer_care_details.email"),
            (
                "/grievance_officer_details/mobile_number",
                json!("913854559033"),
                "grievance_officer_details.mobile_number",
            ),
            ("/grievance_officer_details/name", json!(""), "grievance_officer_details.name"),
        ];
        for (pointer, value, field) in cases {
            let rejection = refused(pointer, value);
            assert_eq!(rejection.code, ErrorCode::ParameterValueInvalid, "{field}");
            assert!(rejection.details.starts_with(&format!("{field}:")), "{}", rejection.details);
        }
        let mut other = valid();
        other["entity_type"] = json!("Other");
        other.as_object_mut().unwrap().remove("entity_type_custom");
        assert!(compliance_info(&other).unwrap_err().details.contains("entity_type_custom"));
        let mut company = valid();
        company["entity_type"] = json!("Private Company");
        assert!(compliance_info(&company).unwrap_err().details.starts_with("is_registered:"));
        company.as_object_mut().unwrap().remove("is_registered");
        assert!(compliance_info(&company).is_ok());
    }
}
