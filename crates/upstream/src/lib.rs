//! The upstream: where Premise delivers messages. Today the built-in [`Sandbox`] (an emulated
//! WhatsApp network for development, CI and load tests); later a bridge to the Cloud API.
//!
//! An upstream answers each send with an [`SendOutcome`]: acknowledged, a transient failure
//! (the engine retries until acknowledged) or a permanent failure (the message ends `failed`).
//! What happens after the acknowledgement (delivered, read) arrives later as [`StatusEvent`]s
//! on the sink the upstream was built with.
//!
//! The sandbox's realism is pure logic in modules of its own, each unit-tested:
//! [`test_numbers`] (fixed outcomes, and `/v1/contacts` validity), [`window`] (the 24-hour
//! customer-service window and the sandbox clock), [`templates`] (the registry and hydration),
//! [`conversation`] (conversation-based pricing) and [`pacing`] (the real client's throughput).

pub mod conversation;
mod directory;
pub mod pacing;
mod sandbox;
pub mod templates;
pub mod test_numbers;
pub mod window;

use async_trait::async_trait;
use premise_wire::{Billing, MessageStatus, StatusError};

pub use directory::{Directory, Everyone, SandboxDirectory};
pub use sandbox::{Sandbox, SandboxConfig, SandboxWorld};

/// A message on its way out: its id, recipient and canonical request JSON, and the shard (of
/// how many) that sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub id: String,
    pub recipient: String,
    pub payload: String,
    pub shard: u32,
    pub shards: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Taken; with the conversation it was billed in, if the upstream says.
    Acknowledged(Option<Billing>),
    /// Worth retrying: timeouts, 5xx, 429, lost connections.
    Transient(String),
    /// Will never succeed; the message fails with this error.
    Permanent(StatusError),
}

/// Something that happened to a message, reported by the upstream or the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEvent {
    pub message_id: String,
    pub status: MessageStatus,
    pub at_ms: i64,
    pub errors: Vec<StatusError>,
    /// The message's conversation and pricing, carried by its `sent` and `delivered` statuses.
    pub billing: Option<Billing>,
}

/// Where upstreams report later statuses.
pub type EventSink = tokio::sync::mpsc::Sender<StatusEvent>;

/// A message the upstream acknowledged earlier and still owes statuses for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub message_id: String,
    pub recipient: String,
    pub status: MessageStatus,
    /// When it reached `status`, Unix ms.
    pub since_ms: i64,
}

#[async_trait]
pub trait Upstream: Send + Sync + std::fmt::Debug {
    async fn send(&self, message: &OutboundMessage) -> SendOutcome;

    /// Called when this replica takes over a shard, with the shard's messages that were sent
    /// but not yet read. A real network keeps that state itself and needs nothing; the
    /// in-process sandbox lost it with the process that held the shard, and schedules the
    /// statuses still to come.
    async fn resume(&self, _unfinished: &[Unfinished]) {}
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
