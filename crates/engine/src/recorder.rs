//! Recording what happened to messages: acknowledgements and failures from shard workers,
//! delivered and read from the upstream. Events are batched into one transaction that moves
//! each message along its lifecycle and queues the status callbacks the settings ask for.
//! A failed write (the database going away) is retried until it succeeds.

use std::sync::Arc;
use std::time::Duration;

use premise_base::Clock;
use premise_store::Store;
use premise_upstream::{StatusEvent, StatusReports};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{SettingsCache, lifecycle, retry};

const MAX_BATCH: usize = 2_000;
/// A batch smaller than this waits up to [`LINGER`] for more events before it is written. At a
/// few thousand events a second batches were a handful of events, each batch two statements;
/// waiting a few milliseconds makes several times fewer (fixed-2000: ~8% less database CPU per
/// message) and delays only the statuses, never an acceptance. Under full load batches are
/// larger and are written at once.
const LINGER_BELOW: usize = 64;
const LINGER: Duration = Duration::from_millis(4);
/// A failed write is tried again after this, doubling up to [`RETRY_MAX`].
const RETRY_INITIAL: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Recorder {
    /// Events from upstreams: recorded soon, nobody waits.
    events: mpsc::Sender<StatusEvent>,
    /// Events from shard workers, who wait until theirs is committed.
    tracked: mpsc::Sender<(StatusEvent, oneshot::Sender<()>)>,
}

impl Recorder {
    pub(crate) fn start(
        store: Arc<dyn Store>,
        settings: SettingsCache,
        callbacks_ready: Arc<Notify>,
        clock: Clock,
        cancel: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let (events, event_rx) = mpsc::channel(50_000);
        let (tracked, tracked_rx) = mpsc::channel(50_000);
        let recording = Recording { store, settings, clock };
        let task = tokio::spawn(run(event_rx, tracked_rx, recording, callbacks_ready, cancel));
        (Self { events, tracked }, task)
    }

    /// Records the event and returns once it is committed. A worker moves on to a
    /// recipient's next message only after this, so a crash can only ever repeat the one
    /// message per recipient that was in flight, never reorder.
    pub async fn record_committed(&self, event: StatusEvent) {
        let (done, committed) = oneshot::channel();
        if self.tracked.send((event, done)).await.is_err() || committed.await.is_err() {
            tracing::warn!(
                "status recorder stopped before recording an event (the message stays queued)"
            );
        }
    }
}

impl Recorder {
    /// Records the events (in one or a few batches) and answers whether all were committed;
    /// `false` if the recorder stopped first (shutting down), when the caller must not
    /// acknowledge them to whoever sent them.
    pub async fn record_all(&self, events: Vec<StatusEvent>) -> bool {
        let mut waiting = Vec::with_capacity(events.len());
        for event in events {
            let (done, committed) = oneshot::channel();
            if self.tracked.send((event, done)).await.is_err() {
                return false;
            }
            waiting.push(committed);
        }
        for committed in waiting {
            if committed.await.is_err() {
                return false;
            }
        }
        true
    }
}

/// Every upstream's statuses come in here: the sandbox's reported, the Cloud bridge's recorded
/// (the webhook that carried them is acknowledged once they are committed).
#[async_trait::async_trait]
impl StatusReports for Recorder {
    async fn report(&self, event: StatusEvent) -> bool {
        self.events.send(event).await.is_ok()
    }

    async fn record(&self, events: Vec<StatusEvent>) -> bool {
        self.record_all(events).await
    }
}

/// What recording a batch needs.
struct Recording {
    store: Arc<dyn Store>,
    settings: SettingsCache,
    clock: Clock,
}

async fn run(
    mut events: mpsc::Receiver<StatusEvent>,
    mut tracked: mpsc::Receiver<(StatusEvent, oneshot::Sender<()>)>,
    recording: Recording,
    callbacks_ready: Arc<Notify>,
    cancel: CancellationToken,
) {
    loop {
        let mut batch = Vec::new();
        let mut waiting = Vec::new();
        tokio::select! {
            Some((event, done)) = tracked.recv() => {
                batch.push(event);
                waiting.push(done);
            }
            Some(event) = events.recv() => batch.push(event),
            () = cancel.cancelled() => {
                // Shutting down after the shard workers: record what is already here.
                while let Ok(event) = events.try_recv() {
                    batch.push(event);
                }
                if !batch.is_empty() {
                    recording.record(&batch, &cancel).await;
                }
                return;
            }
        }
        // Everything already waiting; then, for a small batch, what comes within the linger.
        // Real time, not the passed-in clock: a pause this short is not behaviour a test
        // drives, and a manual clock would hold the batch until it was moved.
        let linger_until = tokio::time::Instant::now() + LINGER;
        while batch.len() < MAX_BATCH {
            if let Ok((event, done)) = tracked.try_recv() {
                batch.push(event);
                waiting.push(done);
            } else if let Ok(event) = events.try_recv() {
                batch.push(event);
            } else if batch.len() >= LINGER_BELOW {
                break;
            } else {
                tokio::select! {
                    Some((event, done)) = tracked.recv() => {
                        batch.push(event);
                        waiting.push(done);
                    }
                    Some(event) = events.recv() => batch.push(event),
                    () = tokio::time::sleep_until(linger_until) => break,
                }
            }
        }
        if recording.record(&batch, &cancel).await {
            callbacks_ready.notify_waiters();
            for done in waiting {
                let _ = done.send(());
            }
        }
    }
}

impl Recording {
    /// Records the batch in one transaction, retried with backoff until it succeeds (or
    /// shutdown; the messages concerned then stay queued and are sent again, which is
    /// at-least-once).
    async fn record(&self, batch: &[StatusEvent], cancel: &CancellationToken) -> bool {
        let mut ids: Vec<String> = batch.iter().map(|e| e.message_id.clone()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut failures = 0;
        loop {
            match self.attempt(&ids, batch).await {
                Ok(()) => return true,
                Err(e) => {
                    failures += 1;
                    let delay = retry::backoff(failures, RETRY_INITIAL, RETRY_MAX, fastrand::f64());
                    tracing::warn!(error = format!("{e:#}"), events = batch.len(), retry_in = ?delay, "recording statuses failed");
                    tokio::select! {
                        () = self.clock.sleep(delay) => {}
                        () = cancel.cancelled() => return false,
                    }
                }
            }
        }
    }

    /// One try: read the messages' states, plan, write the plan.
    async fn attempt(&self, ids: &[String], batch: &[StatusEvent]) -> anyhow::Result<()> {
        let (_, current) = self.settings.get().await?;
        self.store
            .record_statuses(ids, self.clock.now(), &|states| {
                lifecycle::plan(states, batch, &current)
            })
            .await
            .inspect_err(|e| self.store.health().record_failure(e))?;
        Ok(())
    }
}
