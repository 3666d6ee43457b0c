//! The On-Premises JSON contract, and nothing else.
//!
//! Every byte an integration sends or receives is described here: request bodies, response
//! envelopes, error codes and the rules that turn raw wire values into validated domain values
//! ("parse, don't validate": a [`Password`] or [`Username`] that exists is a valid one). The crate
//! is pure (no I/O, no async) so it can be unit-, property- and fuzz-tested on its own, and every
//! other crate depends on it rather than the other way round.

pub mod cloud_codes;
pub mod cloud_webhooks;
pub mod compliance;
pub mod contacts;
mod envelope;
mod error;
pub mod fields;
pub mod media;
pub mod messages;
pub mod photo;
pub mod profile;
pub mod providers;
pub mod registration;
pub mod settings;
mod shards;
pub mod stickers;
mod time;
mod users;
mod webhooks;

// Envelopes and errors: what every answer carries.
pub use envelope::{API_VERSION, ErrorDetail, Meta};
pub use error::{ErrorCode, Rejection, shorten_quotes};

// Requests, parsed into validated values.
pub use messages::{Content, Message, WaId};
pub use settings::{AppSettings, WebhookFormat};
pub use shards::{ShardCount, shard_of};
pub use users::{
    CreateUserRequest, LoginRequest, LoginToken, Password, Role, UpdateUserRequest, UserView,
    Username,
};

// Webhooks: statuses and what they carry.
pub use time::format_expires_after;
pub use webhooks::{
    Billing, Conversation, ConversationOrigin, MessageStatus, Pricing, StatusCallback,
    StatusCustomer, StatusError,
};
