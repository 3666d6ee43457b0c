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
mod sql;
mod sqlite;
mod store;
mod tx;

// Opening a store, and what can go wrong with it.
pub use connect::{ConnectOptions, connect};
pub use error::{Outage, StoreError};
pub use health::{Down, Health};

// The interface every backend implements (`Store` and the parts it is made of).
pub use store::{
    CloudBridge, Customers, Documents, Idempotency, Inventory, Media, Pipeline, Retention, Store,
    WebhookJournal,
};

// What crosses it: accounts and tokens; the queue, statuses and callbacks; the rest.
pub use model::{Backend, Credential, TokenSubject, User};
pub use model::{
    Backlog, Enqueued, Lease, MessageState, NewCallback, NewMessage, PendingCallback, QueueRead,
    QueuedMessage, ShardBacklog, StatusPlan,
};
pub(crate) use model::{CallbackRow, ContactRow};
pub use model::{ContactCheck, InboundMessage, JournaledWebhook, KeptAnswer, NewInbound};
pub use model::{CustomerMoved, KnownCustomer, StoredMessage, Unfinished};
pub use model::{Expired, MessagePurge, PurgedPage, SandboxConversation};
