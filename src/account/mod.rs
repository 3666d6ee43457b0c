//! The account's own state documents and their rules, apart from HTTP: its registration (a
//! code asked for, then verified) and its two-step verification PIN (wrong guesses counted,
//! then locked out). Each is a settings document in the store, so every replica applies the
//! same rules to the same state; codes and PINs are kept only sealed ([`crate::auth::Codes`]).

mod registration;
mod two_step;

pub use registration::{CODE_TTL_SECS, MAX_ATTEMPTS, PendingCode, Registration};
pub use two_step::{MAX_WRONG_PINS, PIN_LOCK_SECS, TwoStep};
