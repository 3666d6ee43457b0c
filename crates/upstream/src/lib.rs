//! The upstream: the far side Premise delivers messages to. One folder per upstream:
//! [`sandbox`], the built-in emulated WhatsApp network (development, CI, load tests), and
//! [`cloud`], the bridge to Meta's WhatsApp Cloud API (production). This file holds what every
//! upstream shares: the [`Upstream`] trait the engine drives, and the types that cross it.
//!
//! An upstream answers each send with a [`SendOutcome`]: acknowledged, a transient failure (the
//! engine retries until acknowledged) or a permanent failure (the message ends `failed`). What
//! happens after the acknowledgement (delivered, read) arrives later as [`StatusEvent`]s on the
//! sink the upstream was built with ([`UpstreamContext`]). Time is a [`Clock`], passed in.

pub mod cloud;
mod fence;
pub mod sandbox;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use premise_wire::contacts::PhoneNumber;
use premise_wire::messages::template::Template;
use premise_wire::{Billing, Message, MessageStatus, StatusCustomer, StatusError};
use tokio_util::sync::CancellationToken;

pub use premise_base::Clock;

/// An error with its causes, as one line (for logs and for the reasons kept with a failure).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
pub use fence::Fence;

/// A message on its way out: its id, the validated message, the shard (of how many) that
/// sends it, and that shard's lease, checked immediately before the message leaves.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessage {
    pub id: String,
    pub message: Message,
    pub shard: u32,
    pub shards: u32,
    pub fence: Fence,
}

impl OutboundMessage {
    /// The recipient's WhatsApp id.
    pub fn recipient(&self) -> &str {
        self.message.to.as_str()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Taken. `upstream_id`: the far side's own id for the message, if it has one (the Cloud
    /// API's `wamid`), stored against Premise's id so any replica maps its statuses back;
    /// `billing`: the conversation it was billed in, if the upstream says; `customer`: the
    /// recipient's identifiers the upstream gave (its `sent` status carries them).
    Acknowledged {
        upstream_id: Option<String>,
        billing: Option<Billing>,
        customer: Box<StatusCustomer>,
    },
    /// Worth retrying: timeouts, 5xx, 429, lost connections. `retry_after`: the far side asked
    /// for at least this long before the next try (`Retry-After`).
    Transient { why: String, retry_after: Option<Duration> },
    /// Will never succeed; the message fails with this error.
    Permanent(StatusError),
}

impl SendOutcome {
    /// Taken, with nothing more to say.
    pub fn acknowledged() -> Self {
        Self::Acknowledged { upstream_id: None, billing: None, customer: Box::default() }
    }

    /// Worth retrying on the engine's own schedule.
    pub fn transient(why: impl Into<String>) -> Self {
        Self::Transient { why: why.into(), retry_after: None }
    }
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
    /// The customer's identifiers the upstream gave with the status (business-scoped user ids,
    /// username), passed on in its callback.
    pub customer: StatusCustomer,
    /// The upstream's own id for the message, learnt when it acknowledged it: recorded with
    /// the acknowledgement, in the same transaction.
    pub upstream_id: Option<String>,
}

impl StatusEvent {
    /// `status` reached at `at_ms`, with nothing else to carry.
    pub fn new(message_id: impl Into<String>, status: MessageStatus, at_ms: i64) -> Self {
        Self {
            message_id: message_id.into(),
            status,
            at_ms,
            errors: Vec::new(),
            billing: None,
            customer: StatusCustomer::default(),
            upstream_id: None,
        }
    }
}

/// Why the far side was not told something (a read receipt): what it answered.
#[derive(Debug, thiserror::Error)]
pub enum NotTold {
    #[error(transparent)]
    Cloud(#[from] cloud::CloudError),
}

/// The one way in for what became of messages after their send, from any upstream: the
/// engine's status recorder, started and stopped with the engine, which batches statuses into
/// the store and queues the callbacks they cause. The emulated network reports what it
/// schedules; the Cloud bridge what Meta's webhooks say ([`cloud::statuses`]).
#[async_trait]
pub trait StatusReports: Send + Sync + std::fmt::Debug {
    /// To be recorded soon; nobody waits. `false` once the recorder has stopped.
    async fn report(&self, event: StatusEvent) -> bool;
    /// Recorded, answered once committed; `false` if the recorder stopped first (whoever
    /// sent them must then not be told they were taken).
    async fn record(&self, events: Vec<StatusEvent>) -> bool;
}

/// What an upstream is built with: where its statuses go, the clock, and the token that
/// stops its background work (cancelled when the engine shuts down).
#[derive(Debug, Clone)]
pub struct UpstreamContext {
    pub statuses: Arc<dyn StatusReports>,
    pub clock: Clock,
    pub stop: CancellationToken,
}

/// A message the upstream acknowledged earlier and still owes statuses for, as the store
/// keeps it.
pub use premise_store::Unfinished;

#[async_trait]
pub trait Upstream: Send + Sync + std::fmt::Debug {
    async fn send(&self, message: &OutboundMessage) -> SendOutcome;

    /// Called when this replica takes over a shard, with the shard's messages that were sent
    /// but not yet read. A real network keeps that state itself and needs nothing; the
    /// in-process sandbox lost it with the process that held the shard, and schedules the
    /// statuses still to come.
    async fn resume(&self, _unfinished: &[Unfinished]) {}

    /// Whether [`Upstream::resume`] wants the unfinished messages: finding them walks the
    /// shard's stored messages, so they are not looked for when nothing would use them.
    fn resumes(&self) -> bool {
        false
    }

    /// Checks a template message before it is accepted: On-Premises hydrated templates when
    /// the send was requested, so template errors (2000, 2001, 2005, 2012) answered the POST.
    /// By default any well-formed template is accepted, and the far side's verdict comes back
    /// later as a `failed` status.
    async fn check_template(&self, _template: &Template) -> Result<(), StatusError> {
        Ok(())
    }

    /// Who is on WhatsApp, for `/v1/contacts`: the WhatsApp id of a well-formed `number`, or
    /// `None` if it is not on WhatsApp. By default everyone is, with their digits as their id,
    /// as On-Premises answered from v2.43 on.
    async fn lookup_contact(&self, number: &PhoneNumber) -> Option<String> {
        Some(number.as_str().to_owned())
    }

    /// Tells the far side the integration read the customer's message `inbound_id`
    /// (`PUT /v1/messages/{id}`), with a typing indicator if `typing`. Nothing to tell by
    /// default.
    async fn mark_read(&self, _inbound_id: &str, _typing: bool) -> Result<(), NotTold> {
        Ok(())
    }

    /// Whether the far side is reachable and takes Premise's credentials, for `/v1/health`.
    fn gateway(&self) -> Gateway {
        Gateway::Connected
    }
}

/// The upstream's connection, as `/v1/health` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gateway {
    Connected,
    /// Sends cannot go through: why (an expired token, the far side unreachable, ...). Messages
    /// are kept and retried meanwhile.
    Disconnected(String),
}
