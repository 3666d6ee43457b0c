//! A shard worker's sending half. It holds a window of the shard's queue in memory, sends the
//! oldest message of each recipient (never two of one recipient at once, so each recipient's
//! messages reach the upstream in acceptance order) and many recipients concurrently. A
//! transient failure delays only that recipient, with capped exponential backoff; a permanent
//! one fails the message. Outcomes go to the recorder; a message leaves the queue only when
//! its acknowledgement or failure is recorded (promise 2).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use premise_store::{QueuedMessage, Store};
use premise_upstream::{OutboundMessage, SendOutcome, StatusEvent, Upstream, now_ms};
use premise_wire::{MessageStatus, StatusError};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{EngineConfig, Recorder, retry};

/// How often the worker re-reads its whole queue, to catch rows committed out of `seq` order
/// by other replicas (a cursor alone would skip them).
const RESCAN_EVERY: Duration = Duration::from_secs(2);

pub(crate) struct ShardSender {
    pub shard: u32,
    pub store: Arc<dyn Store>,
    pub upstream: Arc<dyn Upstream>,
    pub recorder: Recorder,
    pub config: Arc<EngineConfig>,
    /// Until when (Unix ms) this replica may act for the shard; kept fresh by the pool.
    pub valid_until: Arc<AtomicI64>,
    pub work: Arc<Notify>,
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
    /// Every seq taken from the store and not yet seen gone from it: guards against loading a
    /// message again between its acknowledgement and the recording of it.
    known: HashSet<i64>,
    buffered: usize,
    cursor: i64,
}

impl Window {
    /// Takes new rows (in `seq` order) while there is room; the cursor only passes rows taken
    /// or already known.
    fn add(&mut self, rows: Vec<QueuedMessage>, capacity: usize) {
        for row in rows {
            if self.known.contains(&row.seq) {
                self.cursor = self.cursor.max(row.seq);
                continue;
            }
            if self.buffered >= capacity {
                break;
            }
            self.cursor = self.cursor.max(row.seq);
            self.known.insert(row.seq);
            self.buffered += 1;
            let queue = self.queues.entry(row.recipient.clone()).or_default();
            if queue.is_empty() {
                self.ready.push_back(row.recipient.clone());
            }
            queue.push_back(row);
        }
    }

    /// After a full rescan that returned `rows` (the first `limit` queued rows): forget known
    /// seqs the store no longer has queued, except those still in our queues.
    fn prune(&mut self, rows: &[QueuedMessage], complete: bool) {
        let listed: HashSet<i64> = rows.iter().map(|r| r.seq).collect();
        let horizon = if complete { i64::MAX } else { rows.last().map_or(i64::MIN, |r| r.seq) };
        let held: HashSet<i64> = self.queues.values().flatten().map(|m| m.seq).collect();
        self.known.retain(|seq| *seq > horizon || listed.contains(seq) || held.contains(seq));
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
    pub async fn run(self, stop: CancellationToken) {
        let mut window = Window::default();
        let mut in_flight: JoinSet<Sent> = JoinSet::new();
        let mut next_poll = Instant::now();
        let mut next_rescan = Instant::now() + RESCAN_EVERY;
        loop {
            let stopping = stop.is_cancelled();
            if stopping && in_flight.is_empty() {
                return;
            }
            let now = Instant::now();
            if !stopping && now >= next_poll {
                self.refill(&mut window, now >= next_rescan).await;
                if now >= next_rescan {
                    next_rescan = now + RESCAN_EVERY;
                }
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
                    in_flight.spawn(send(self.upstream.clone(), head, self.config.send_timeout));
                }
            }
            let wake_at =
                window.backoff.peek().map_or(next_poll, |Reverse((at, _))| (*at).min(next_poll));
            tokio::select! {
                Some(joined) = in_flight.join_next() => match joined {
                    Ok((message, outcome)) => self.settle(&mut window, message, outcome).await,
                    Err(e) => tracing::error!(shard = self.shard, error = %e, "a send task failed"),
                },
                () = self.work.notified(), if !stopping => next_poll = Instant::now(),
                () = tokio::time::sleep_until(wake_at), if !stopping => {}
                () = stop.cancelled(), if !stopping => {}
            }
        }
    }

    fn lease_valid(&self) -> bool {
        now_ms() < self.valid_until.load(Ordering::Relaxed)
    }

    async fn refill(&self, window: &mut Window, rescan: bool) {
        let room = self.config.shard_buffer.saturating_sub(window.buffered);
        let limit =
            u32::try_from(if rescan { self.config.shard_buffer } else { room }).unwrap_or(u32::MAX);
        if limit == 0 {
            return;
        }

        let after = if rescan { 0 } else { window.cursor };
        match self.store.queued(self.shard, after, limit).await {
            Ok(rows) => {
                if rescan {
                    window.prune(&rows, rows.len() < limit as usize);
                }
                window.add(rows, self.config.shard_buffer);
            }
            Err(e) => tracing::warn!(shard = self.shard, error = %e, "cannot read the queue"),
        }
    }

    async fn settle(&self, window: &mut Window, message: QueuedMessage, outcome: SendOutcome) {
        match outcome {
            SendOutcome::Acknowledged => {
                self.recorder.record(event(&message.id, MessageStatus::Sent, Vec::new())).await;
                window.done(&message.recipient);
            }
            SendOutcome::Permanent(error) => {
                tracing::info!(shard = self.shard, id = %message.id, code = error.code, "message failed permanently");
                self.recorder.record(event(&message.id, MessageStatus::Failed, vec![error])).await;
                window.done(&message.recipient);
            }
            SendOutcome::Transient(why) => {
                let attempts = window.attempts.entry(message.recipient.clone()).or_insert(0);
                *attempts += 1;
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

async fn send(upstream: Arc<dyn Upstream>, message: QueuedMessage, timeout: Duration) -> Sent {
    let outbound = OutboundMessage {
        id: message.id.clone(),
        recipient: message.recipient.clone(),
        payload: message.payload.clone(),
    };
    let outcome =
        tokio::time::timeout(timeout, upstream.send(&outbound)).await.unwrap_or_else(|_| {
            SendOutcome::Transient(format!("no answer from the upstream within {timeout:?}"))
        });
    (message, outcome)
}

fn event(id: &str, status: MessageStatus, errors: Vec<StatusError>) -> StatusEvent {
    StatusEvent { message_id: id.to_owned(), status, at_ms: now_ms(), errors }
}
