//! Short secrets kept in the settings documents (the two-step verification PIN, a registration
//! code): six digits, too few for a plain salted hash (a copy of the database would give them up
//! in a million tries). They are kept as HMAC-SHA256 under a key derived from the token signing
//! key, which a copy of the settings alone does not hold when `auth.token_secret` is set, and
//! compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub struct Codes {
    key: [u8; 32],
}

impl std::fmt::Debug for Codes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codes").finish_non_exhaustive()
    }
}

impl Codes {
    /// Keys derived from the token signing key, for this use only.
    pub fn new(signing_key: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(signing_key).expect("HMAC takes any key length");
        mac.update(b"premise: keyed hashes of PINs and codes");
        Self { key: mac.finalize().into_bytes().into() }
    }

    fn mac(&self, salt: &str, code: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(salt.as_bytes());
        mac.update(b":");
        mac.update(code.as_bytes());
        mac
    }

    /// How `code` is kept, with its random `salt`: lower-case hex.
    pub fn seal(&self, salt: &str, code: &str) -> String {
        self.mac(salt, code).finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `code` is the one kept as `sealed`, compared in constant time.
    pub fn matches(&self, salt: &str, code: &str, sealed: &str) -> bool {
        let Some(expected) = from_hex(sealed) else { return false };
        self.mac(salt, code).verify_slice(&expected).is_ok()
    }
}

/// A PIN kept by an earlier version, as SHA-256 of `salt:code` (hex), compared in constant time;
/// it is kept the new way the next time it is set.
pub fn legacy_matches(salt: &str, code: &str, sha256_hex: &str) -> bool {
    use sha2::Digest;
    let Some(expected) = from_hex(sha256_hex) else { return false };
    let actual = Sha256::digest(format!("{salt}:{code}"));
    expected.len() == actual.len()
        && expected.iter().zip(actual.iter()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_codes_match_only_themselves_and_only_under_their_key() {
        let codes = Codes::new(b"signing key");
        let sealed = codes.seal("salt", "123456");
        assert_eq!(sealed.len(), 64);
        assert!(codes.matches("salt", "123456", &sealed));
        assert!(!codes.matches("salt", "123457", &sealed));
        assert!(!codes.matches("other", "123456", &sealed));
        assert!(!codes.matches("salt", "123456", "not hex"));
        assert!(!Codes::new(b"another key").matches("salt", "123456", &sealed));
        let legacy = "8d2bb9c2e59d8d1bd55f04fdb4bdd0a7e5c2e1a5e0f2b7b9c5dbe3c5d2e1f0a9";
        assert!(!legacy_matches("salt", "123456", legacy));
        use sha2::Digest;
        let kept: String =
            Sha256::digest("salt:123456").iter().map(|b| format!("{b:02x}")).collect();
        assert!(legacy_matches("salt", "123456", &kept));
        assert!(!legacy_matches("salt", "654321", &kept));
    }
}
