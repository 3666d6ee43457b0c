//! Premise's storage: one interface, [`Store`], and two backends behind it.
//!
//! The store is the only source of truth (design promise 5): users, revoked tokens, the token
//! signing key, login throttling, the message queue, uploaded media, the contacts cache and
//! idempotency keys all live here so any number of replicas can serve any
//! request. The backend is chosen once, at start-up, from the database URL's scheme
//! ([`connect`]): `sqlite://` for the embedded default, `postgres://` for production. Each backend
//! owns its SQL and its migrations (`migrations/sqlite`, `migrations/postgres`), and one
//! conformance suite (`crates/store/tests/conformance.rs`) runs unchanged against both.

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

// The interface every backend implements: `Store` and the parts it is made of.
pub use store::{
    Browse, CloudBridge, ContactCache, Customers, Documents, Idempotency, Inbox, Inventory, Media,
    Pipeline, PlanFn, Retention, SandboxState, Store, WebhookJournal,
};

// What crosses it. Accounts and tokens:
pub use model::{Credential, TokenSubject, User};
// the queue, statuses and callbacks:
pub use model::{
    Attempt, Backlog, CallbackAttempt, Enqueued, Lease, MessageState, NewCallback, NewMessage,
    PendingCallback, Placed, QueueRead, QueuedMessage, Routed, Settled, ShardBacklog, StatusPlan,
    StatusUpdate, StoredMessage, Unfinished, UpstreamId,
};
// customers' messages, who customers are, and the Cloud bridge's webhooks and media:
pub use model::{
    CloudMedia, CustomerMoved, InboundMessage, Journaled, JournaledWebhook, KnownCustomer,
    NewInbound,
};
// the sandbox's world:
pub use model::{ConversationOpening, CustomerWindow, SandboxConversation};
// the rest of the state: contacts checked, idempotency, media, settings documents, replicas:
pub use model::{Account, ContactCheck, Document, KeptAnswer, MediaInfo, Node};
// retention and diagnostics, and what the console reads:
pub use model::Backend;
pub use model::{
    Expired, MessageHistory, MessagePage, MessagePurge, MessageSummary, PurgedPage, TableRows,
};

pub(crate) use model::{CallbackRow, ContactRow, ConversationRow};
