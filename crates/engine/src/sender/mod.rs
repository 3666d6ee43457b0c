//! A shard worker's sending half. It holds a window of the shard's queue in memory, sends the
//! oldest message of each recipient (never two of one recipient at once, so each recipient's
//! messages reach the upstream in acceptance order) and many recipients concurrently. A
//! transient failure delays only that recipient, with capped exponential backoff; a permanent
//! one fails the message. A message leaves the queue only when its acknowledgement or failure
//! is recorded (promise 2), and the recipient's next message is sent only after that, so a
//! crash repeats at most the one message per recipient that was in flight.
//!
//! New messages come in two ways: batches this replica committed, announced by its committers,
//! and reads of the store (at start, every `poll_interval` for other replicas' messages, and
//! whenever an announced batch does not follow on from what the worker has seen).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use premise_store::{Enqueued, QueueRead, QueuedMessage, Store};
use premise_upstream::{OutboundMessage, SendOutcome, StatusEvent, Unfinished, Upstream, now_ms};
use premise_wire::{MessageStatus, StatusError};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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
}

type Sent = (QueuedMessage, SendOutcome);

/// The worker's cache of its queue.
#[derive(Default)]
struct Window {
    /// Queued messages per recipient, oldest first; the head is in flight or next.
    queues: HashMap<String, VecDeque<QueuedMessage>>,
    /// Recipients whose head may be sent now.
    ready: VecDeque<String>,
    /// Recipients waiting out a backoff, by when.
    backoff: BinaryHeap<Reverse<(Instant, String)>>,
    /// Failed attempts of each recipient's head.
    attempts: HashMap<String, u32>,
    buffered: usize,
    /// The highest `seq` read. The store hands out `seq` in commit order, so nothing older can
    /// appear later.
    cursor: i64,
    /// Every queued message of the shard up to this `seq` has been taken in.
    covered: i64,
}

impl Window {
    /// Takes rows (in `seq` order, all newer than the cursor).
    fn add(&mut self, rows: Vec<QueuedMessage>) {
        for row in rows {
            self.cursor = self.cursor.max(row.seq);
            self.buffered += 1;
            let queue = self.queues.entry(row.recipient.clone()).or_default();
            if queue.is_empty() {
                self.ready.push_back(row.recipient.clone());
            }
            queue.push_back(row);
        }
    }

    /// Takes in what a store read returned.
    fn read(&mut self, read: QueueRead) {
        self.add(read.messages);
        self.covered = self.covered.max(read.covered_through);
    }

    /// Takes this shard's share of a batch committed by this replica, if the batch follows on
    /// from what the window has seen. `false` when it does not (a batch of another replica came
    /// between, or the buffer is full): the store must be read.
    fn follow(&mut self, batch: &Enqueued, shard: u32, generation: i64, buffer: usize) -> bool {
        if batch.generation != generation {
            // Routed with another shard count: an older batch was moved by the change and is
            // in the store, a newer one is for the next generation's workers.
            return true;
        }
        if batch.previous_seq > self.covered {
            return false;
        }
        let mine: Vec<QueuedMessage> = batch
            .messages
            .iter()
            .filter(|(s, m)| *s == shard && m.seq > self.cursor)
            .map(|(_, m)| m.clone())
            .collect();
        if self.buffered + mine.len() > buffer {
            return false;
        }
        self.add(mine);
        self.covered = self.covered.max(batch.last_seq);
        true
    }

    /// The head of `recipient` is done (acknowledged or failed): move to its next message.
    fn done(&mut self, recipient: &str) {
        self.attempts.remove(recipient);
        if let Some(queue) = self.queues.get_mut(recipient) {
            queue.pop_front();
            self.buffered -= 1;
            if queue.is_empty() {
                self.queues.remove(recipient);
            } else {
                self.ready.push_back(recipient.to_owned());
            }
        }
    }
}

impl ShardSender {
    pub async fn run(mut self, stop: CancellationToken) {
        // Listen before the first read, so no batch falls between the two.
        let mut committed = self.committed.take();
        self.resume().await;
        let mut window = Window::default();
        let mut in_flight: JoinSet<Sent> = JoinSet::new();
        let mut next_poll = Instant::now();
        let mut last_read = Instant::now();
        loop {
            let stopping = stop.is_cancelled();
            if stopping && in_flight.is_empty() {
                return;
            }
            let now = Instant::now();
            if !stopping && now >= next_poll {
                self.refill(&mut window).await;
                last_read = now;
                next_poll = now + self.config.poll_interval;
            }
            while let Some(Reverse((at, _))) = window.backoff.peek() {
                if *at > now {
                    break;
                }
                let Some(Reverse((_, recipient))) = window.backoff.pop() else { break };
                window.ready.push_back(recipient);
            }
            if !stopping && self.lease_valid() {
                while in_flight.len() < self.config.shard_window {
                    let Some(recipient) = window.ready.pop_front() else { break };
                    let Some(head) = window.queues.get(&recipient).and_then(|q| q.front()).cloned()
                    else {
                        continue;
                    };
                    in_flight.spawn(send(
                        self.upstream.clone(),
                        self.recorder.clone(),
                        (self.shard, self.shards),
                        head,
                        self.config.send_timeout,
                        self.metrics.clone(),
                    ));
                }
            }
            let wake_at =
                window.backoff.peek().map_or(next_poll, |Reverse((at, _))| (*at).min(next_poll));
            tokio::select! {
                Some(joined) = in_flight.join_next() => match joined {
                    Ok((message, outcome)) => self.settle(&mut window, message, outcome),
                    Err(e) => tracing::error!(shard = self.shard, error = %e, "a send task failed"),
                },
                batch = recv(&mut committed), if !stopping && committed.is_some() => {
                    let follows = match batch {
                        Ok(batch) => window.follow(&batch, self.shard, self.generation, self.config.shard_buffer),
                        Err(RecvError::Lagged(_)) => false,
                        Err(RecvError::Closed) => {
                            committed = None;
                            true
                        }
                    };
                    if !follows {
                        next_poll = next_poll.min((last_read + self.config.read_gap).max(Instant::now()));
                    }
                }
                () = tokio::time::sleep_until(wake_at), if !stopping => {}
                () = stop.cancelled(), if !stopping => {}
            }
        }
    }

    /// Tells the upstream which of this shard's messages still await statuses (a previous
    /// owner may have died holding them).
    async fn resume(&self) {
        match self.store.unfinished(self.shard, 100_000).await {
            Ok(rows) if !rows.is_empty() => {
                let unfinished: Vec<Unfinished> = rows
                    .into_iter()
                    .filter_map(|(message_id, code, since_ms, recipient)| {
                        MessageStatus::from_code(code).map(|status| Unfinished {
                            message_id,
                            recipient,
                            status,
                            since_ms,
                        })
                    })
                    .collect();
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

    fn lease_valid(&self) -> bool {
        now_ms() < self.valid_until.load(Ordering::Relaxed)
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

    /// Acknowledgements and failures arrive here already recorded (see [`send`]).
    fn settle(&self, window: &mut Window, message: QueuedMessage, outcome: SendOutcome) {
        match outcome {
            SendOutcome::Acknowledged(_) => window.done(&message.recipient),
            SendOutcome::Permanent(error) => {
                tracing::info!(shard = self.shard, id = %message.id, code = error.code, "message failed permanently");
                window.done(&message.recipient);
            }
            SendOutcome::Transient(why) => {
                let attempts = window.attempts.entry(message.recipient.clone()).or_insert(0);
                *attempts += 1;
                Metrics::add(&self.metrics.retries, 1);
                let wait = retry::backoff(
                    *attempts,
                    self.config.retry_initial,
                    self.config.retry_max,
                    fastrand::f64(),
                );
                tracing::debug!(shard = self.shard, id = %message.id, attempts = *attempts, ?wait, why, "send failed; will retry");
                window.backoff.push(Reverse((Instant::now() + wait, message.recipient)));
            }
        }
    }
}

/// Sends one message and, if the upstream settled it (acknowledged or failed for good),
/// records that durably before returning: the recipient's next message waits for it.
async fn send(
    upstream: Arc<dyn Upstream>,
    recorder: Recorder,
    (shard, shards): (u32, u32),
    message: QueuedMessage,
    timeout: Duration,
    metrics: Arc<Metrics>,
) -> Sent {
    let outbound = OutboundMessage {
        id: message.id.clone(),
        recipient: message.recipient.clone(),
        payload: message.payload.clone(),
        shard,
        shards,
    };
    let in_flight = InFlight::start(&metrics);
    let started = Instant::now();
    let outcome =
        tokio::time::timeout(timeout, upstream.send(&outbound)).await.unwrap_or_else(|_| {
            SendOutcome::Transient(format!("no answer from the upstream within {timeout:?}"))
        });
    metrics.upstream_latency.observe(started.elapsed());
    drop(in_flight);
    match &outcome {
        SendOutcome::Acknowledged(billing) => {
            let sent = StatusEvent {
                billing: billing.clone(),
                ..event(&message.id, MessageStatus::Sent, Vec::new())
            };
            recorder.record_committed(sent).await;
            Metrics::add(&metrics.acknowledged, 1);
        }
        SendOutcome::Permanent(error) => {
            let failed = event(&message.id, MessageStatus::Failed, vec![error.clone()]);
            recorder.record_committed(failed).await;
            Metrics::add(&metrics.failed, 1);
        }
        SendOutcome::Transient(_) => {}
    }
    (message, outcome)
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

fn event(id: &str, status: MessageStatus, errors: Vec<StatusError>) -> StatusEvent {
    StatusEvent { message_id: id.to_owned(), status, at_ms: now_ms(), errors, billing: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(seq: i64, recipient: &str) -> QueuedMessage {
        QueuedMessage {
            seq,
            id: format!("m{seq}"),
            recipient: recipient.into(),
            payload: "{}".into(),
        }
    }

    fn batch(previous_seq: i64, generation: i64, rows: &[(u32, i64, &str)]) -> Enqueued {
        let messages: Vec<_> = rows.iter().map(|&(s, seq, r)| (s, queued(seq, r))).collect();
        let last_seq = messages.last().map_or(previous_seq, |(_, m)| m.seq);
        Enqueued { previous_seq, last_seq, generation, messages }
    }

    fn ids(window: &Window, recipient: &str) -> Vec<i64> {
        window.queues.get(recipient).map_or(Vec::new(), |q| q.iter().map(|m| m.seq).collect())
    }

    #[test]
    fn batches_that_follow_on_are_taken_without_a_read() {
        let mut window = Window::default();
        window.read(QueueRead { messages: vec![queued(3, "a")], covered_through: 5 });
        assert!(window.follow(&batch(5, 1, &[(0, 6, "a"), (1, 7, "b"), (0, 8, "c")]), 0, 1, 100));
        assert_eq!((ids(&window, "a"), ids(&window, "c")), (vec![3, 6], vec![8]));
        assert!(ids(&window, "b").is_empty(), "another shard's");
        assert_eq!((window.cursor, window.covered), (8, 8));
        assert!(
            window.follow(&batch(8, 1, &[(1, 9, "b")]), 0, 1, 100),
            "none of ours still counts"
        );
        assert_eq!(window.covered, 9);
    }

    #[test]
    fn a_gap_a_full_buffer_or_a_seen_batch_fall_back_to_the_store() {
        let mut window = Window::default();
        window.read(QueueRead { messages: vec![], covered_through: 10 });
        assert!(!window.follow(&batch(12, 1, &[(0, 13, "a")]), 0, 1, 100), "11..12 unseen");
        assert!(ids(&window, "a").is_empty());
        assert!(!window.follow(&batch(10, 1, &[(0, 11, "a"), (0, 12, "b")]), 0, 1, 1), "no room");
        assert_eq!(window.covered, 10);
        // The read that follows the gap catches up; the batch arriving late adds nothing twice.
        window.read(QueueRead {
            messages: vec![queued(11, "a"), queued(12, "b"), queued(13, "a")],
            covered_through: 13,
        });
        assert!(window.follow(&batch(10, 1, &[(0, 11, "a"), (0, 12, "b")]), 0, 1, 100));
        assert_eq!(ids(&window, "a"), [11, 13]);
        assert!(window.follow(&batch(13, 2, &[(0, 14, "a")]), 0, 1, 100), "other generation");
        assert_eq!((ids(&window, "a"), window.covered), (vec![11, 13], 13));
    }
}
