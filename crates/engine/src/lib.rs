//! The outbound pipeline, between the HTTP front and the upstream:
//!
//! ```text
//! Enqueuer ──group commit──▶ store (messages) ──▶ ShardPool: one worker per leased shard
//!                                                   │ per recipient in order, retry until acked
//!                                                   ▼
//!                         upstream ──acks, statuses──▶ Recorder ──▶ store (callbacks)
//!                                                                     │
//!                                   Dispatcher (one per process) ──POST──▶ webhooks.url
//! ```
//!
//! The store is the truth: every in-memory structure here (worker queues, retry timers,
//! cached settings and backlog counts) is a cache that a restarted process rebuilds from it.
//! Each worker follows three layers: one step, a loop, a runner started and stopped with the
//! server through a cancellation token.

mod backlog;
mod config;
mod dispatcher;
mod engine;
mod enqueue;
mod every;
mod ids;
pub mod lifecycle;
pub mod metrics;
mod pool;
mod probe;
mod recorder;
pub mod retention;
pub mod retry;
mod sender;
mod settings;
#[cfg(test)]
mod testing;
pub mod webhook_http;

pub use backlog::Backlog;
pub use config::EngineConfig;
pub use dispatcher::{NotVerified, verify_webhook};
pub use engine::{Engine, UpstreamFactory};
pub use enqueue::{EnqueueError, Enqueuer};
pub use ids::{new_message_id, random_uuid};
pub use metrics::{Metrics, NodeStats, StatsSample};
pub use pool::{CLOCK_OFFSET_WARNING_MS, NodeView};
pub use recorder::Recorder;
pub use retention::{Retention, RetentionConfig};
pub use settings::SettingsCache;
pub use webhook_http::WebhookHttp;

/// An error with its causes, for logs.
pub(crate) use premise_upstream::error_chain as chain;
