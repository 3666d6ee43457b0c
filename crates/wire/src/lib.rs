//! The On-Premises JSON contract, and nothing else.
//!
//! Every byte an integration sends or receives is described here: request bodies, response
//! envelopes, error codes and the rules that turn raw wire values into validated domain values
//! ("parse, don't validate": a [`Password`] or [`Username`] that exists is a valid one). The crate
//! is pure (no I/O, no async) so it can be unit-, property- and fuzz-tested on its own, and every
//! other crate depends on it rather than the other way round.

mod envelope;
mod error;
mod time;
mod users;

pub use envelope::{API_VERSION, ErrorDetail, ErrorEnvelope, Meta};
pub use error::{ErrorCode, Rejection};
pub use time::format_expires_after;
pub use users::{
    CreateUserRequest, LoginRequest, LoginToken, Password, Role, UpdateUserRequest, UserView,
    Username,
};
