//! Premise's storage: one interface, [`Store`], and two backends behind it.
//!
//! The store is the only source of truth (design promise 5): users, revoked tokens, the token
//! signing key, login throttling, the message queue, uploaded media, the contacts cache and
//! idempotency keys all live here so any number of replicas can serve any
//! request. The backend is chosen once, at start-up, from the database URL's scheme
//! ([`connect`]): `sqlite://` for the embedded default, `postgres://` for production. Each backend
//! owns its SQL and its migrations (`migrations/sqlite`, `migrations/postgres`), and one
//! conformance suite (`tests/conformance.rs`) runs unchanged against both.

mod connect;
mod error;
mod health;
mod model;
mod postgres;
mod sqlite;
mod store;
mod tx;

pub use connect::{ConnectOptions, connect};
pub use error::{Outage, StoreError};
pub use health::{Down, Health};
pub use model::{
    Account, Backend, Backlog, ContactCheck, Enqueued, InboundMessage, Lease, MediaInfo,
    MessageState, NewCallback, NewInbound, NewMessage, Node, PendingCallback, QueueRead,
    QueuedMessage, Reservation, ShardBacklog, StatusPlan, StoredResponse, TokenSubject, User,
};
pub use store::{ContactCache, Idempotency, Inbox, Media, Pipeline, PlanFn, SandboxState, Store};
