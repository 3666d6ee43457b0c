//! Who is calling: passwords, login tokens, accounts and login throttling.
//!
//! Everything here keeps its state in the store, never in process memory, so a token issued or
//! revoked by one replica is honoured by all of them (design promise 5).

mod accounts;
mod codes;
mod password;
mod subjects;
mod throttle;
mod token;

pub use accounts::{AccountError, Accounts, DEFAULT_ADMIN};
pub use codes::{Codes, legacy_matches};
pub use password::{PasswordError, PasswordHasher};
pub use subjects::SubjectChecks;
pub use throttle::LoginThrottle;
pub use token::{Claims, TokenError, Tokens};
