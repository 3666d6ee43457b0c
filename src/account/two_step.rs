//! The two-step verification PIN, as kept (`account.two_step`): sealed with a salt, and the
//! wrong guesses made in a row against it.

use serde::{Deserialize, Serialize};

use crate::auth::Codes;

/// Wrong PINs in a row after which the PIN is not checked for [`PIN_LOCK_SECS`].
pub const MAX_WRONG_PINS: i64 = 5;
pub const PIN_LOCK_SECS: i64 = 600;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwoStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_hmac: Option<String>,
    /// A PIN kept by an older version (salted SHA-256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_sha256: Option<String>,
    /// Wrong PINs in a row, modulo [`MAX_WRONG_PINS`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wrong: i64,
    /// Unix seconds: no PIN is checked before then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<i64>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl TwoStep {
    /// The PIN `pin_hmac` (sealed with `salt`), with no wrong guesses.
    pub fn set(salt: String, pin_hmac: String) -> Self {
        Self { salt: Some(salt), pin_hmac: Some(pin_hmac), ..Self::default() }
    }

    /// The salt of the PIN in force; `None` while two-step verification is off.
    pub fn pin_salt(&self) -> Option<&str> {
        let sealed = self.pin_hmac.is_some() || self.pin_sha256.is_some();
        self.salt.as_deref().filter(|_| sealed)
    }

    /// Seconds left of a lock-out at `now`, if one holds.
    pub fn locked_for(&self, now: i64) -> Option<i64> {
        self.locked_until.filter(|until| *until > now).map(|until| until - now)
    }

    pub fn matches(&self, pin: &str, codes: &Codes) -> bool {
        let Some(salt) = self.salt.as_deref() else { return false };
        match (&self.pin_hmac, &self.pin_sha256) {
            (Some(sealed), _) => codes.matches(salt, pin, sealed),
            (None, Some(legacy)) => crate::auth::legacy_matches(salt, pin, legacy),
            (None, None) => false,
        }
    }

    /// After the right PIN for the PIN sealed with `salt`: no wrong guesses, no lock-out. (A
    /// PIN set meanwhile, with another salt, is left as it is.)
    pub fn after_right_pin(mut self, salt: &str) -> Self {
        if self.salt.as_deref() == Some(salt) {
            self.wrong = 0;
            self.locked_until = None;
        }
        self
    }

    /// After a wrong PIN at `now` against the PIN sealed with `salt`: one more wrong guess,
    /// and a lock-out of [`PIN_LOCK_SECS`] at every [`MAX_WRONG_PINS`]th.
    pub fn after_wrong_pin(mut self, salt: &str, now: i64) -> Self {
        if self.salt.as_deref() == Some(salt) {
            let wrong = self.wrong + 1;
            self.wrong = wrong % MAX_WRONG_PINS;
            if wrong >= MAX_WRONG_PINS {
                self.locked_until = Some(now + PIN_LOCK_SECS);
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_wrong_pins_lock_it_out_and_the_right_one_clears_the_count() {
        let codes = Codes::new(b"key");
        let mut state = TwoStep::set("s".into(), codes.seal("s", "123456"));
        assert_eq!(state.pin_salt(), Some("s"));
        assert!(state.matches("123456", &codes) && !state.matches("654321", &codes));
        for _ in 0..MAX_WRONG_PINS - 1 {
            state = state.after_wrong_pin("s", 100);
        }
        assert_eq!((state.wrong, state.locked_for(100)), (4, None));
        state = state.after_wrong_pin("s", 100);
        assert_eq!((state.wrong, state.locked_for(100)), (0, Some(PIN_LOCK_SECS)));
        assert_eq!(state.clone().after_wrong_pin("other salt", 100), state, "another PIN's");
        let cleared = state.after_right_pin("s");
        assert_eq!((cleared.wrong, cleared.locked_until), (0, None));
        assert_eq!(TwoStep::default().pin_salt(), None, "off");
    }
}
