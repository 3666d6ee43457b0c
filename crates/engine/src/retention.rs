//! Retention: the database stops growing. A worker (one replica at a time, by a job lease)
//! deletes every `interval` what is finished and older than its `[retention]` setting, in
//! batches that each hold the database for one short statement:
//!
//! - messages `read` or `failed` for `messages`; `sent` or `delivered` ones once WhatsApp's
//!   30-day offline window has passed as well (no status can come after it);
//! - customers' messages after `inbound`, media after `media`;
//! - what expires by itself (contact checks, idempotency keys, revoked-token records,
//!   failed-login counters, sandbox conversation windows), on the same schedule.
//!
//! Queued messages and anything whose webhook has not been delivered are never deleted (the
//! store's [`premise_store::Retention`] guarantees it). `PUT /v1/services/message/gc` runs a
//! pass at once ([`Retention::run`]).
//!
//! Messages are walked in `seq` (acceptance) order, as no index names their status. A pass
//! makes two walks: the oldest messages, accepted before the offline window and `messages`
//! ago, from the start (nearly all of them go: what stays is queued or waits for a callback);
//! then the newer ones, accepted up to `messages` and a lag ago (the lag: `messages`, at most a
//! day, by which nearly every message that will be read has been), from where the last pass
//! stopped (at the first message it kept only for now: queued, owed a callback, or recent and
//! not yet finished), so each is examined about once. A message that second walk keeps because
//! it was not yet read, or read only late, is found again by the first once it is past the
//! offline window. So a message read within a day goes between `messages` after it was read
//! and a day later; one never read, or read later, once the offline window has passed too.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use premise_base::{Clock, UnixMs};
use premise_store::{Expired, MessagePurge, Store, StoreError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Metrics;

/// How long WhatsApp keeps a message for a phone that is offline: after it, no `delivered` or
/// `read` can come, so a `sent` or `delivered` message is finished.
pub const OFFLINE_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

/// How long after it was sent a message is likely to be read still: the walk of newer messages
/// waits this much (at most) beyond `messages` before it looks at one, and looks again at
/// younger ones that cannot go yet (with a short `messages` setting); older ones are left to
/// the walk of what is past the offline window.
const STATUSES_SOON: Duration = Duration::from_secs(24 * 3600);

/// A customer service window (24 h) and a day's margin: sandbox windows older than this go.
const WINDOW_KEPT: Duration = Duration::from_secs(2 * 24 * 3600);

const JOB: &str = "retention";

/// The `[retention]` settings, and the lifetimes of what expires by itself.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// How long a finished message is kept; `None`: forever.
    pub messages: Option<Duration>,
    /// How long a customer's message is kept; `None`: forever.
    pub inbound: Option<Duration>,
    /// How long uploaded and received media is kept; `None`: forever.
    pub media: Option<Duration>,
    /// How long a `/v1/contacts` check is trusted (its cache).
    pub contact_checks: Duration,
    /// The failed-login counting window.
    pub login_window: Duration,
    /// Time between passes.
    pub interval: Duration,
    /// Rows deleted by one statement at most.
    pub batch: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            messages: Some(Duration::from_secs(7 * 24 * 3600)),
            inbound: Some(Duration::from_secs(7 * 24 * 3600)),
            media: Some(Duration::from_secs(30 * 24 * 3600)),
            contact_checks: Duration::from_secs(7 * 24 * 3600),
            login_window: Duration::from_secs(60),
            interval: Duration::from_secs(60),
            batch: 500,
        }
    }
}

/// What a pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub messages: u64,
    pub inbound: u64,
    pub media: u64,
    pub expired: u64,
}

impl Purged {
    pub fn total(&self) -> u64 {
        self.messages + self.inbound + self.media + self.expired
    }
}

/// Runs retention passes on a store, with its clock.
#[derive(Debug, Clone)]
pub struct Retention {
    store: Arc<dyn Store>,
    config: Arc<RetentionConfig>,
    clock: Clock,
    metrics: Arc<Metrics>,
    /// Where the walk of newer messages stopped (a `seq`): the next pass goes on from there.
    walked_through: Arc<AtomicI64>,
}

impl Retention {
    pub fn new(
        store: Arc<dyn Store>,
        config: RetentionConfig,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self { store, config: Arc::new(config), clock, metrics, walked_through: Arc::default() }
    }

    /// One pass: everything due now, batch after batch until a batch comes back short.
    pub async fn run(&self) -> Result<Purged, StoreError> {
        self.pass(&|| async { Ok(true) }).await
    }

    /// A pass; `between` runs after each full batch (the worker renews its lease there) and
    /// says whether to go on.
    async fn pass<F, Fut>(&self, between: &F) -> Result<Purged, StoreError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<bool, StoreError>>,
    {
        let config = &self.config;
        let now = self.clock.now();
        let before = |kept: Duration| now.minus(kept);
        let limit = config.batch.max(1);
        let mut purged = Purged::default();
        let m = &self.metrics;

        if let Some(kept) = config.messages {
            let finished = before(kept);
            let unconfirmed = before(kept + OFFLINE_WINDOW);
            let walk = |after_seq, accepted_through| MessagePurge {
                after_seq,
                accepted_through,
                finished_before: finished,
                unconfirmed_before: unconfirmed,
                recent_after: before(STATUSES_SOON),
            };
            let (old, through, _) = self.walk(walk(0, unconfirmed), limit, between).await?;
            let from = self.walked_through.load(Ordering::Relaxed).max(through);
            let lagged = before(kept + kept.min(STATUSES_SOON));
            let (newer, through, kept_seq) = self.walk(walk(from, lagged), limit, between).await?;
            // The next pass starts again at the first message kept only for now.
            let resume = kept_seq.map_or(through, |seq| seq - 1);
            self.walked_through.store(resume.max(from), Ordering::Relaxed);
            purged.messages = old + newer;
            Metrics::add(&m.purged_messages, purged.messages);
        }
        if let Some(kept) = config.inbound {
            purged.inbound =
                drain(limit, between, || self.store.purge_inbound(before(kept), limit)).await?;
            Metrics::add(&m.purged_inbound, purged.inbound);
        }
        if let Some(kept) = config.media {
            // Media rows are large (up to 128 chunks each): fewer per statement.
            let per_batch = (limit / 50).max(1);
            purged.media =
                drain(per_batch, between, || self.store.purge_media(before(kept), per_batch))
                    .await?;
            Metrics::add(&m.purged_media, purged.media);
        }
        let sandbox_now = UnixMs(now.ms().saturating_add(self.store.sandbox_clock_offset().await?));
        let expired = Expired {
            now,
            contacts_before: before(config.contact_checks),
            logins_before: before(config.login_window),
            windows_before: sandbox_now.minus(WINDOW_KEPT),
        };
        purged.expired =
            drain(limit, between, || self.store.purge_expired(&expired, limit)).await?;
        Metrics::add(&m.purged_expired, purged.expired);
        Ok(purged)
    }

    /// Walks the messages page by page from `walk.after_seq` while `between` says to go on:
    /// how many were deleted, the last `seq` examined and the first kept only for now.
    async fn walk<F, Fut>(
        &self,
        mut walk: MessagePurge,
        limit: u32,
        between: &F,
    ) -> Result<(u64, i64, Option<i64>), StoreError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<bool, StoreError>>,
    {
        let (mut deleted, mut kept) = (0, None);
        loop {
            let page = self.store.purge_messages(&walk, limit).await?;
            deleted += page.deleted;
            kept = kept.or(page.first_kept_seq);
            walk.after_seq = page.through_seq;
            if !page.more || !between().await? {
                return Ok((deleted, walk.after_seq, kept));
            }
            tokio::task::yield_now().await;
        }
    }

    /// Runs a pass every `interval` while this replica holds the job's lease, until cancelled.
    pub(crate) fn spawn(self, node: String, cancel: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let ttl = self.config.interval.max(Duration::from_secs(10)) * 3;
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = self.clock.sleep(self.config.interval) => {}
                }
                let held = self.store.hold_job(JOB, &node, self.clock.now(), ttl).await;
                if !matches!(held, Ok(true)) {
                    continue;
                }
                // Another replica that took the lease over carries on: this one stops.
                let renew =
                    || async { self.store.hold_job(JOB, &node, self.clock.now(), ttl).await };
                match self.pass(&renew).await {
                    Ok(purged) if purged.total() > 0 => tracing::info!(
                        messages = purged.messages,
                        inbound = purged.inbound,
                        media = purged.media,
                        expired = purged.expired,
                        "retention: deleted what was finished"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "retention: pass stopped"),
                }
            }
        })
    }
}

/// Repeats `batch` while it deletes a full `limit` and `between` says to go on; the total.
async fn drain<B, BF, F, Fut>(limit: u32, between: &F, batch: B) -> Result<u64, StoreError>
where
    B: Fn() -> BF,
    BF: Future<Output = Result<u64, StoreError>>,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<bool, StoreError>>,
{
    let mut total = 0;
    loop {
        let deleted = batch().await?;
        total += deleted;
        if deleted < u64::from(limit) || !between().await? {
            return Ok(total);
        }
        // Let the hot path's writes in between two batches.
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use premise_store::{MessageState, StatusPlan, StatusUpdate};
    use premise_wire::MessageStatus;

    use super::*;
    use crate::testing::{T0, message, setup};

    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(24 * 3600);

    /// With the default week, on a driven clock: a message read within a day goes a week
    /// after it was read, give or take a day; one read later, or never, stays until the
    /// offline window has passed too; a queued one never goes.
    #[tokio::test]
    async fn a_message_goes_a_week_after_its_read_or_after_the_offline_window() {
        let setup = setup().await;
        let store = setup.store.clone();
        let batch = ["read-soon", "read-late", "delivered", "queued"]
            .iter()
            .enumerate()
            .map(|(n, id)| message(id, &format!("1631555000{n}")))
            .collect::<Vec<_>>();
        store.enqueue(&batch).await.unwrap();
        let set = |id: &str, status: MessageStatus, at: Duration| {
            let store = store.clone();
            let ids = [id.to_owned()];
            async move {
                let plan = move |states: Vec<MessageState>| StatusPlan {
                    updates: states
                        .iter()
                        .map(|s| StatusUpdate::to(s.id.clone(), status, UnixMs(T0).plus(at)))
                        .collect(),
                    ..StatusPlan::default()
                };
                store.record_statuses(&ids, UnixMs(T0).plus(at), &plan).await.unwrap();
            }
        };
        set("read-soon", MessageStatus::Read, HOUR).await;
        set("delivered", MessageStatus::Delivered, Duration::from_secs(60)).await;
        set("read-late", MessageStatus::Read, 2 * DAY).await;
        let metrics = Metrics::new(setup.clock.clone());
        let retention =
            Retention::new(store.clone(), RetentionConfig::default(), setup.clock.clone(), metrics);
        let left = || async {
            let mut left = Vec::new();
            for id in ["read-soon", "read-late", "delivered", "queued"] {
                if store.message(id).await.unwrap().is_some() {
                    left.push(id);
                }
            }
            left
        };

        setup.clock.advance(7 * DAY + 2 * HOUR);
        assert_eq!(
            retention.run().await.unwrap().messages,
            0,
            "a week after the read, not yet a day more"
        );
        setup.clock.advance(DAY);
        assert_eq!(retention.run().await.unwrap().messages, 1);
        assert_eq!(left().await, ["read-late", "delivered", "queued"]);
        setup.clock.advance(2 * DAY);
        assert_eq!(retention.run().await.unwrap().messages, 0, "read late: left for the window");
        setup.clock.advance(30 * DAY);
        assert_eq!(retention.run().await.unwrap().messages, 2, "past the offline window too");
        assert_eq!(left().await, ["queued"], "queued: never");
    }
}
