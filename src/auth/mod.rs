//! Who is calling: passwords, login tokens, accounts and login throttling.
//!
//! Everything here keeps its state in the store, never in process memory, so a token issued or
//! revoked by one replica is honoured by all of them (design promise 5).

mod accounts;
mod password;
mod subjects;
mod throttle;
mod token;

pub use accounts::{AccountError, Accounts, DEFAULT_ADMIN};
pub use password::{PasswordError, PasswordHasher};
pub use subjects::SubjectChecks;
pub use throttle::LoginThrottle;
pub use token::{Claims, TokenError, Tokens};

/// Seconds since the Unix epoch, the unit every stored time uses.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
