//! The upstream: the far side Premise delivers messages to. One folder per upstream:
//! [`sandbox`], the built-in emulated WhatsApp network (development, CI, load tests), and next
//! to it a bridge to the Cloud API. This file holds what every upstream shares: the
//! [`Upstream`] trait the engine drives, and the types that cross it.
//!
//! An upstream answers each send with a [`SendOutcome`]: acknowledged, a transient failure (the
//! engine retries until acknowledged) or a permanent failure (the message ends `failed`). What
//! happens after the acknowledgement (delivered, read) arrives later as [`StatusEvent`]s on the
//! sink the upstream was built with ([`UpstreamContext`]). Time is a [`Clock`], passed in.

mod clock;
pub mod sandbox;

use async_trait::async_trait;
use premise_wire::contacts::PhoneNumber;
use premise_wire::messages::template::Template;
use premise_wire::{Billing, Message, MessageStatus, StatusError};
use tokio_util::sync::CancellationToken;

pub use clock::Clock;

/// A message on its way out: its id, the validated message, and the shard (of how many) that
/// sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessage {
    pub id: String,
    pub message: Message,
    pub shard: u32,
    pub shards: u32,
}

impl OutboundMessage {
    /// The recipient's WhatsApp id.
    pub fn recipient(&self) -> &str {
        self.message.to.as_str()
    }
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

/// What an upstream is built with: where to report later statuses, the clock, and the token
/// that stops its background work (cancelled when the engine shuts down).
#[derive(Debug, Clone)]
pub struct UpstreamContext {
    pub events: EventSink,
    pub clock: Clock,
    pub stop: CancellationToken,
}

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

    /// Checks a template message before it is accepted: On-Premises hydrated templates when
    /// the send was requested, so template errors (2000, 2001, 2005, 2012) answered the POST.
    /// By default any well-formed template is accepted, and the far side's verdict comes back
    /// later as a `failed` status.
    fn check_template(&self, _template: &Template) -> Result<(), StatusError> {
        Ok(())
    }

    /// Who is on WhatsApp, for `/v1/contacts`: the WhatsApp id of a well-formed `number`, or
    /// `None` if it is not on WhatsApp. By default everyone is, with their digits as their id,
    /// as On-Premises answered from v2.43 on.
    async fn lookup_contact(&self, number: &PhoneNumber) -> Option<String> {
        Some(number.as_str().to_owned())
    }
}
