//! The account's registration, as kept (`account.registration`): nothing yet, a code sent and
//! waiting to be verified, or a number registered.

use premise_wire::Rejection;
use serde::{Deserialize, Serialize};

use crate::auth::Codes;

/// How long a code sent is good for.
pub const CODE_TTL_SECS: i64 = 600;
/// Wrong codes allowed before the code is void and a new one must be asked for.
pub const MAX_ATTEMPTS: i64 = 5;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Registration {
    /// Never asked for (no document).
    #[default]
    #[serde(skip)]
    Unregistered,
    Pending(PendingCode),
    Registered {
        number: String,
        /// The verified name the certificate carried.
        vname: Option<String>,
    },
}

/// A code sent for `number`, kept sealed with its salt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCode {
    pub number: String,
    pub vname: Option<String>,
    /// How it was sent: `sms` or `voice`.
    pub method: String,
    pub salt: String,
    pub code_hmac: String,
    /// Unix seconds.
    pub expires_at: i64,
    #[serde(default)]
    pub attempts: i64,
}

impl Registration {
    pub fn is_registered(&self, number: &str) -> bool {
        matches!(self, Self::Registered { number: registered, .. } if registered == number)
    }

    /// What verifying with `code` at `now` (Unix seconds) makes of a pending registration:
    /// registered if the code is the one sent, one more wrong attempt if not. Refused when no
    /// code was asked for, or the code has expired or been guessed wrong too often.
    pub fn verified(self, code: &str, now: i64, codes: &Codes) -> Result<Self, Rejection> {
        let Self::Pending(mut pending) = self else {
            return Err(Rejection::invalid(
                "code",
                "no code was asked for: POST /v1/account first",
            ));
        };
        if pending.expires_at < now || pending.attempts >= MAX_ATTEMPTS {
            return Err(Rejection::invalid(
                "code",
                "the code has expired or was guessed wrong too often: ask for a new one",
            ));
        }
        if codes.matches(&pending.salt, code, &pending.code_hmac) {
            return Ok(Self::Registered { number: pending.number, vname: pending.vname });
        }
        pending.attempts += 1;
        Ok(Self::Pending(pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_registers_once_right_and_is_void_after_five_wrong() {
        let codes = Codes::new(b"key");
        let pending = Registration::Pending(PendingCode {
            number: "15550001".into(),
            vname: Some("Shop".into()),
            method: "sms".into(),
            salt: "s".into(),
            code_hmac: codes.seal("s", "123456"),
            expires_at: 1_000,
            attempts: 0,
        });
        let registered = pending.clone().verified("123456", 1_000, &codes).unwrap();
        assert!(registered.is_registered("15550001"));
        assert!(registered.verified("123456", 1_000, &codes).is_err(), "no code pending");
        assert!(pending.clone().verified("123456", 1_001, &codes).is_err(), "expired");
        let mut state = pending;
        for _ in 0..MAX_ATTEMPTS {
            state = state.verified("000000", 1_000, &codes).unwrap();
        }
        assert!(state.verified("123456", 1_000, &codes).is_err(), "guessed wrong too often");
        assert_eq!(serde_json::to_value(Registration::default()).ok(), None, "never stored");
    }
}
