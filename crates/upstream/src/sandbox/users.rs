//! Who the sandbox's customers are, as WhatsApp tells businesses now: every customer has a
//! business-scoped user id (BSUID), and a customer who adopted a username may write with no
//! phone number at all (`docs/onprem-api.md` section 15).
//!
//! A customer's BSUID is derived from their number, so it is the same on every replica and in
//! every run: the country of the number's calling code (`US` for `1`, `ZZ` when the sandbox does
//! not know it), a dot, and 20 digits of a hash of the number. A username customer injected
//! without one gets a BSUID derived from their username the same way.
//!
//! **Test BSUIDs**: `US.TEST` followed by a test number's digits (`US.TEST16505550100`) behaves
//! as that test number does, for integrations that reply by BSUID.

use premise_wire::StatusCustomer;
use premise_wire::messages::UserId;
use sha2::{Digest, Sha256};

/// The prefix of the test BSUIDs.
pub const TEST_PREFIX: &str = "US.TEST";

/// Calling codes the sandbox names a country for; longest first where they share digits.
const COUNTRIES: [(&str, &str); 16] = [
    ("234", "NG"),
    ("1", "US"),
    ("44", "GB"),
    ("49", "DE"),
    ("33", "FR"),
    ("34", "ES"),
    ("39", "IT"),
    ("31", "NL"),
    ("55", "BR"),
    ("52", "MX"),
    ("91", "IN"),
    ("62", "ID"),
    ("61", "AU"),
    ("81", "JP"),
    ("27", "ZA"),
    ("7", "RU"),
];

fn digits_of(seed: &str) -> String {
    let digest = Sha256::digest(format!("premise:sandbox:bsuid:{seed}").as_bytes());
    let mut number = u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"));
    let mut digits = String::with_capacity(20);
    for _ in 0..20 {
        digits.push(char::from(b'0' + (number % 10) as u8));
        number /= 10;
    }
    digits
}

/// The BSUID of the customer with phone number `wa_id` (digits).
pub fn user_id_of(wa_id: &str) -> String {
    let country = COUNTRIES.iter().find(|(code, _)| wa_id.starts_with(code)).map_or("ZZ", |c| c.1);
    format!("{country}.{}", digits_of(wa_id))
}

/// The BSUID of a username customer injected without one.
pub fn user_id_of_username(username: &str) -> String {
    format!("US.{}", digits_of(&format!("username:{username}")))
}

/// The test number a test BSUID stands for (`US.TEST16505550100` → `16505550100`).
pub fn test_number(user_id: &str) -> Option<&str> {
    user_id
        .strip_prefix(TEST_PREFIX)
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// What a status of a message to `recipient` says of the customer: their BSUID (derived from
/// their number, or the one the integration sent to), and the parent BSUID when it sent to one.
pub fn status_customer(recipient: &str) -> StatusCustomer {
    match UserId::parse("to", recipient) {
        Ok(user) if user.is_parent() => StatusCustomer {
            recipient_parent_user_id: Some(recipient.to_owned()),
            parent_user_id: Some(recipient.to_owned()),
            ..StatusCustomer::default()
        },
        Ok(_) => StatusCustomer {
            user_id: Some(recipient.to_owned()),
            recipient_user_id: Some(recipient.to_owned()),
            ..StatusCustomer::default()
        },
        Err(_) => {
            let user_id = user_id_of(recipient);
            StatusCustomer {
                user_id: Some(user_id.clone()),
                recipient_user_id: Some(user_id),
                ..StatusCustomer::default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_scoped_ids_are_stable_well_formed_and_distinct() {
        let ann = user_id_of("16315551234");
        assert_eq!(ann, user_id_of("16315551234"));
        assert!(ann.starts_with("US.") && ann.len() == 23, "{ann}");
        assert!(UserId::parse("user_id", &ann).is_ok());
        assert_ne!(ann, user_id_of("16315551235"));
        assert!(user_id_of("447700900123").starts_with("GB."));
        assert!(user_id_of("2348012345678").starts_with("NG."));
        assert!(user_id_of("9999999").starts_with("ZZ."));
        assert!(UserId::parse("user_id", &user_id_of_username("bo.bakes")).is_ok());
        assert_eq!(test_number("US.TEST16505550103"), Some("16505550103"));
        assert_eq!(test_number("US.1650"), None);
        let status = status_customer("16315551234");
        assert_eq!(status.recipient_user_id.as_deref(), Some(ann.as_str()));
        let parent = status_customer("US.ENT.1181");
        assert_eq!(parent.recipient_parent_user_id.as_deref(), Some("US.ENT.1181"));
    }
}
