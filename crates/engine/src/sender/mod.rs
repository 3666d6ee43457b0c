//! A shard worker's sending half. It holds a [`Window`] of the shard's queue in memory, sends
//! the oldest message of each recipient (never two of one recipient at once, so each
//! recipient's messages reach the upstream in acceptance order) and many recipients
//! concurrently. A transient failure delays only that recipient, with capped exponential
//! backoff; a permanent one fails the message. A message leaves the queue only when its
//! acknowledgement or failure is recorded (promise 2), and the recipient's next message is sent
//! only after that, so a crash repeats at most the one message per recipient that was in flight.
//!
//! New messages come in two ways: batches this replica committed, announced by its committers,
//! and reads of the store (at start, every `poll_interval` for other replicas' messages, and
//! whenever an announced batch does not follow on from what the worker has seen).
//!
//! [`ShardSender::step`] is one unit of work at a given time; [`ShardSender::settle`] takes in
//! how a send ended; [`ShardSender::run`] is the loop around them.

mod watch;
mod window;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use premise_base::{Clock, millis};
use premise_store::{Enqueued, QueuedMessage, Store};
use premise_upstream::{Fence, OutboundMessage, SendOutcome, StatusEvent, Upstream};
use premise_wire::{Message, MessageStatus, StatusError};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub(crate) use self::watch::QueueWatch;
pub(crate) use self::window::Window;
use crate::{EngineConfig, Metrics, Recorder, retry};

pub(crate) struct ShardSender {
    pub shard: u32,
    /// The shard count of this worker's generation.
    pub shards: u32,
    /// The shard-count generation of this worker's lease.
    pub generation: i64,
    pub store: Arc<dyn Store>,
    pub upstream: Arc<dyn Upstream>,
    pub recorder: Recorder,
    pub config: Arc<EngineConfig>,
    /// Until when (Unix ms) this replica may act for the shard; kept fresh by the pool.
    pub valid_until: Arc<AtomicI64>,
    /// Batches committed by this replica (taken by `run`).
    pub committed: Option<broadcast::Receiver<Arc<Enqueued>>>,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    /// How far the store's queue reaches, watched for the whole replica.
    pub watch: Arc<QueueWatch>,
    /// The shard's floor as this worker last saw it ([`Window::floor`]), for the pool to
    /// record with the lease's renewal.
    pub floor: Arc<AtomicI64>,
}

type Sent = (QueuedMessage, SendOutcome);

impl ShardSender {
    /// One step at `now_ms`: reads the store if a read is due, lets recipients whose backoff
    /// has run out go again, and takes the messages to send now, up to `room` (the head of each
    /// ready recipient). The caller sends each and hands the outcome to [`ShardSender::settle`].
    pub async fn step(&self, window: &mut Window, now_ms: i64, room: usize) -> Vec<QueuedMessage> {
        if window.read_due(now_ms) {
            let poll = millis(self.config.poll_interval);
            // Nothing committed past what the window covers: nothing to read.
            let idle =
                window.covered().is_some_and(|c| self.watch.nothing_past(c, now_ms, 2 * poll));
            if !idle {
                self.refill(window).await;
            }
            window.was_read(now_ms, poll);
            self.floor.store(window.floor(), Ordering::Relaxed);
        }
        window.release_due(now_ms);
        window.take(room)
    }

    /// Takes in how a send ended, at `now_ms` (acknowledgements and failures arrive already
    /// recorded, see [`send`]): the recipient moves on to its next message, or waits out a
    /// backoff (`jitter` in [0, 1) spreads the retries of many recipients).
    pub fn settle(
        &self,
        window: &mut Window,
        message: &QueuedMessage,
        outcome: &SendOutcome,
        now_ms: i64,
        jitter: f64,
    ) {
        match outcome {
            SendOutcome::Acknowledged { .. } => window.done(&message.recipient),
            SendOutcome::Permanent(error) => {
                tracing::info!(shard = self.shard, id = %message.id, code = error.code, "message failed permanently");
                window.done(&message.recipient);
            }
            SendOutcome::Transient { why, retry_after } => {
                let attempts = window.failed_again(&message.recipient);
                Metrics::add(&self.metrics.retries, 1);
                let backoff = retry::backoff(
                    attempts,
                    self.config.retry_initial,
                    self.config.retry_max,
                    jitter,
                );
                // The far side's `Retry-After` is a floor, never shortened by the backoff.
                let wait = retry_after.map_or(backoff, |asked| asked.max(backoff));
                tracing::debug!(shard = self.shard, id = %message.id, attempts, ?wait, why, "send failed; will retry");
                window.retry_at(&message.recipient, now_ms + millis(wait));
            }
        }
    }

    /// The loop: steps, sends, settles, takes in announced batches, until `stop`; then lets
    /// the sends in flight finish. A worker whose lease lapsed (by this replica's reckoning:
    /// its renewals did not come back in time) stops too and drops its window: a read of the
    /// queue may have waited on the database past the lapse, and its messages may be another
    /// owner's to send by now. Every send also checks the lease itself just before it leaves
    /// ([`Fence`]), after its waits.
    pub async fn run(mut self, stop: CancellationToken) {
        // Listen before the first read, so no batch falls between the two.
        let mut committed = self.committed.take();
        self.resume().await;
        let mut window = Window::default();
        let mut in_flight: JoinSet<Sent> = JoinSet::new();
        let fence = Fence::new(self.valid_until.clone(), self.clock.clone());
        loop {
            let stopping = stop.is_cancelled();
            if stopping && in_flight.is_empty() {
                return;
            }
            if !stopping {
                let room = self.config.shard_window.saturating_sub(in_flight.len());
                let taken = self.step(&mut window, self.clock.now_ms(), room).await;
                // Checked after the step, whose read of the queue may have waited long.
                if !self.lease_valid(self.clock.now_ms()) {
                    tracing::warn!(
                        shard = self.shard,
                        "the shard's lease lapsed; the worker stops and drops its window"
                    );
                    // The shard leaves the dispatcher too, and the pool hands the lease back
                    // (if it is still this replica's) to take it again with a fresh worker.
                    stop.cancel();
                    continue;
                }
                for message in taken {
                    in_flight.spawn(send(
                        self.upstream.clone(),
                        self.recorder.clone(),
                        (self.shard, self.shards, fence.clone()),
                        message,
                        self.config.send_timeout,
                        self.metrics.clone(),
                        self.clock.clone(),
                    ));
                }
            }
            tokio::select! {
                Some(joined) = in_flight.join_next() => match joined {
                    Ok((message, outcome)) => {
                        let now = self.clock.now_ms();
                        self.settle(&mut window, &message, &outcome, now, fastrand::f64());
                    }
                    Err(e) => tracing::error!(shard = self.shard, error = %e, "a send task failed"),
                },
                batch = recv(&mut committed), if !stopping && committed.is_some() => {
                    let follows = match batch {
                        Ok(batch) => {
                            self.watch.committed(batch.last_seq);
                            window.follow(&batch, self.shard, self.generation, self.config.shard_buffer)
                        }
                        Err(RecvError::Lagged(_)) => false,
                        Err(RecvError::Closed) => {
                            committed = None;
                            true
                        }
                    };
                    if !follows {
                        window.read_soon(self.clock.now_ms(), millis(self.config.read_gap));
                    }
                }
                () = self.clock.sleep_until_ms(window.wake_at().min(self.valid_until.load(Ordering::Relaxed))), if !stopping => {}
                () = stop.cancelled(), if !stopping => {}
            }
        }
    }

    /// Tells the upstream which of this shard's messages still await statuses (a previous
    /// owner may have died holding them).
    async fn resume(&self) {
        if !self.upstream.resumes() {
            return;
        }
        match self.store.unfinished(self.shard, 100_000).await {
            Ok(unfinished) if !unfinished.is_empty() => {
                tracing::debug!(
                    shard = self.shard,
                    messages = unfinished.len(),
                    "resuming statuses"
                );
                self.upstream.resume(&unfinished).await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(shard = self.shard, error = %e, "cannot list unfinished messages");
            }
        }
    }

    fn lease_valid(&self, now_ms: i64) -> bool {
        now_ms < self.valid_until.load(Ordering::Relaxed)
    }

    async fn refill(&self, window: &mut Window) {
        let room = self.config.shard_buffer.saturating_sub(window.buffered);
        let Ok(limit) = u32::try_from(room) else { return };
        if limit == 0 {
            return;
        }
        match self.store.queued(self.shard, self.generation, window.cursor, limit).await {
            Ok(read) => window.read(read),
            Err(e) => tracing::warn!(shard = self.shard, error = %e, "cannot read the queue"),
        }
    }
}

/// Sends one message and, if the upstream settled it (acknowledged or failed for good),
/// records that durably before returning: the recipient's next message waits for it. A message
/// whose stored request no longer reads back as one fails, loudly, without reaching the
/// upstream.
async fn send(
    upstream: Arc<dyn Upstream>,
    recorder: Recorder,
    (shard, shards, fence): (u32, u32, Fence),
    queued: QueuedMessage,
    timeout: Duration,
    metrics: Arc<Metrics>,
    clock: Clock,
) -> Sent {
    let outcome = match Message::from_stored(&queued.payload) {
        Ok(message) => {
            let outbound = OutboundMessage { id: queued.id.clone(), message, shard, shards, fence };
            let in_flight = InFlight::start(&metrics);
            let started = std::time::Instant::now();
            let outcome =
                clock.timeout(timeout, upstream.send(&outbound)).await.unwrap_or_else(|_| {
                    SendOutcome::transient(format!(
                        "no answer from the upstream within {timeout:?}"
                    ))
                });
            metrics.upstream_latency.observe(started.elapsed());
            drop(in_flight);
            outcome
        }
        Err(unreadable) => {
            tracing::error!(
                id = %queued.id,
                error = %unreadable,
                "a queued message's stored request does not read back; it fails with 1014"
            );
            SendOutcome::Permanent(StatusError {
                code: 1014,
                title: "Internal error".to_owned(),
                details: Some(format!("the stored message could not be read back: {unreadable}")),
            })
        }
    };
    match &outcome {
        SendOutcome::Acknowledged { upstream_id, billing, customer } => {
            let sent = StatusEvent {
                billing: billing.clone(),
                customer: (**customer).clone(),
                upstream_id: upstream_id.clone(),
                ..event(&queued.id, MessageStatus::Sent, Vec::new(), &clock)
            };
            recorder.record_committed(sent).await;
            Metrics::add(&metrics.acknowledged, 1);
        }
        SendOutcome::Permanent(error) => {
            let failed = event(&queued.id, MessageStatus::Failed, vec![error.clone()], &clock);
            recorder.record_committed(failed).await;
            Metrics::add(&metrics.failed, 1);
        }
        SendOutcome::Transient { .. } => {}
    }
    (queued, outcome)
}

/// Counts a send in flight until dropped, also when its worker is aborted mid-send.
struct InFlight<'a>(&'a Metrics);

impl<'a> InFlight<'a> {
    fn start(metrics: &'a Metrics) -> Self {
        metrics.sends_in_flight.fetch_add(1, Ordering::Relaxed);
        Self(metrics)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.sends_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn recv(
    committed: &mut Option<broadcast::Receiver<Arc<Enqueued>>>,
) -> Result<Arc<Enqueued>, RecvError> {
    match committed {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

fn event(id: &str, status: MessageStatus, errors: Vec<StatusError>, clock: &Clock) -> StatusEvent {
    StatusEvent { errors, ..StatusEvent::new(id, status, clock.now_ms()) }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicI64;

    use premise_upstream::SendOutcome;

    use super::*;
    use crate::Metrics;
    use crate::testing::{Setup, T0, Unreached, message, setup};

    fn ids(messages: &[QueuedMessage]) -> Vec<&str> {
        messages.iter().map(|m| m.id.as_str()).collect()
    }

    /// The sender of shard 0 of 1, its lease valid for good.
    fn sender(setup: &Setup) -> ShardSender {
        ShardSender {
            shard: 0,
            shards: 1,
            generation: 1,
            store: setup.store.clone(),
            upstream: Arc::new(Unreached),
            recorder: setup.recorder.clone(),
            config: setup.config.clone(),
            valid_until: Arc::new(AtomicI64::new(i64::MAX)),
            committed: None,
            metrics: Metrics::new(setup.clock.clone()),
            clock: setup.clock.clone(),
            watch: Arc::default(),
            floor: Arc::default(),
        }
    }

    fn transient() -> SendOutcome {
        SendOutcome::transient("the upstream timed out")
    }

    /// The retry schedule, step by step on a driven clock: a recipient whose send fails waits
    /// `retry_initial`, then twice that, and so on, sending nothing meanwhile; its next message
    /// waits behind it; other recipients are not held up.
    #[tokio::test]
    async fn a_failing_recipient_waits_out_its_backoff_while_others_flow() {
        let setup = setup().await;
        let batch = [
            message("a1", "16315550001"),
            message("a2", "16315550001"),
            message("b1", "16315550002"),
        ];
        setup.store.enqueue(&batch).await.unwrap();
        let sender = sender(&setup);
        let initial = millis(setup.config.retry_initial);
        let mut window = Window::default();

        let first = sender.step(&mut window, T0, 64).await;
        assert_eq!(ids(&first), ["a1", "b1"], "one head per recipient");
        // Full jitter (1.0): the whole backoff, so the schedule is exact.
        sender.settle(&mut window, &first[0], &transient(), T0, 1.0);
        sender.settle(&mut window, &first[1], &SendOutcome::acknowledged(), T0, 1.0);
        assert!(sender.step(&mut window, T0 + initial - 1, 64).await.is_empty());
        let again = sender.step(&mut window, T0 + initial, 64).await;
        assert_eq!(ids(&again), ["a1"], "the same head, not a2");

        let failed_at = T0 + initial;
        sender.settle(&mut window, &again[0], &transient(), failed_at, 1.0);
        assert!(sender.step(&mut window, failed_at + 2 * initial - 1, 64).await.is_empty());
        let third = sender.step(&mut window, failed_at + 2 * initial, 64).await;
        assert_eq!(ids(&third), ["a1"], "the second wait is twice the first");

        sender.settle(&mut window, &third[0], &SendOutcome::acknowledged(), failed_at, 1.0);
        let next = sender.step(&mut window, failed_at + 2 * initial, 64).await;
        assert_eq!(ids(&next), ["a2"], "acknowledged: the recipient moves on at once");
        assert_eq!(sender.metrics.retries.load(Ordering::Relaxed), 2);
    }

    /// Messages accepted by another replica are found by reading the store, every
    /// `poll_interval` of the clock.
    #[tokio::test]
    async fn the_store_is_read_again_each_poll_interval() {
        let setup = setup().await;
        let sender = sender(&setup);
        let poll = millis(setup.config.poll_interval);
        let mut window = Window::default();
        assert!(sender.step(&mut window, T0, 64).await.is_empty());
        setup.store.enqueue(&[message("c1", "16315550003")]).await.unwrap();
        assert!(sender.step(&mut window, T0 + poll - 1, 64).await.is_empty(), "not read yet");
        assert_eq!(window.wake_at(), T0 + poll);
        assert_eq!(ids(&sender.step(&mut window, T0 + poll, 64).await), ["c1"]);
    }

    /// With a fresh watch of the store that knows of nothing past what the window covers, a
    /// due read is skipped; once it learns of a later commit, the shard is read.
    #[tokio::test]
    async fn the_store_is_read_only_when_the_watch_knows_of_something_newer() {
        let setup = setup().await;
        let sender = sender(&setup);
        let poll = millis(setup.config.poll_interval);
        let mut window = Window::default();
        assert!(sender.step(&mut window, T0, 64).await.is_empty(), "the first read");
        let enqueued = setup.store.enqueue(&[message("e1", "16315550004")]).await.unwrap();
        sender.watch.read(0, T0 + poll);
        assert!(sender.step(&mut window, T0 + poll, 64).await.is_empty(), "skipped");
        sender.watch.read(enqueued.last_seq, T0 + 2 * poll);
        assert_eq!(ids(&sender.step(&mut window, T0 + 2 * poll, 64).await), ["e1"]);
    }

    /// A queued message whose stored request no longer reads back (damaged, or a rule
    /// tightened since) fails with 1014 and is recorded `failed`; the upstream never sees it.
    #[tokio::test]
    async fn a_stored_request_that_no_longer_parses_fails_loudly() {
        let setup = setup().await;
        let mut damaged = message("d1", "16315550009");
        damaged.payload = r#"{"to":"16315550009","type":"text","text":{}}"#.into();
        setup.store.enqueue(&[damaged]).await.unwrap();
        let sender = sender(&setup);
        let mut window = Window::default();
        let taken = sender.step(&mut window, T0, 64).await;
        let (_, outcome) = send(
            sender.upstream.clone(),
            sender.recorder.clone(),
            (0, 1, Fence::open(setup.clock.clone())),
            taken[0].clone(),
            Duration::from_secs(1),
            sender.metrics.clone(),
            setup.clock.clone(),
        )
        .await;
        match outcome {
            SendOutcome::Permanent(error) => {
                assert_eq!(error.code, 1014);
                assert!(error.details.unwrap().contains("text.body"), "names what is wrong");
            }
            other => panic!("{other:?}"),
        }
        let stored = setup.store.message("d1").await.unwrap().unwrap();
        assert_eq!(stored.status, MessageStatus::Failed);
    }
}
