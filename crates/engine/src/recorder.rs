//! Recording what happened to messages: acknowledgements and failures from shard workers,
//! delivered and read from the upstream. Events are batched into one transaction that moves
//! each message along its lifecycle and queues the status callbacks the settings ask for.
//! A failed write (the database going away) is retried until it succeeds.

use std::sync::Arc;
use std::time::Duration;

use premise_store::Store;
use premise_upstream::{EventSink, StatusEvent, now_ms};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{SettingsCache, lifecycle};

const MAX_BATCH: usize = 2_000;

#[derive(Debug, Clone)]
pub struct Recorder {
    /// Events from upstreams: recorded soon, nobody waits.
    events: EventSink,
    /// Events from shard workers, who wait until theirs is committed.
    tracked: mpsc::Sender<(StatusEvent, oneshot::Sender<()>)>,
}

impl Recorder {
    pub(crate) fn start(
        store: Arc<dyn Store>,
        settings: SettingsCache,
        callbacks_ready: Arc<Notify>,
        cancel: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let (events, event_rx) = mpsc::channel(50_000);
        let (tracked, tracked_rx) = mpsc::channel(50_000);
        let task =
            tokio::spawn(run(event_rx, tracked_rx, store, settings, callbacks_ready, cancel));
        (Self { events, tracked }, task)
    }

    /// Where upstreams report events.
    pub fn sink(&self) -> EventSink {
        self.events.clone()
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

async fn run(
    mut events: mpsc::Receiver<StatusEvent>,
    mut tracked: mpsc::Receiver<(StatusEvent, oneshot::Sender<()>)>,
    store: Arc<dyn Store>,
    settings: SettingsCache,
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
                    record(&store, &settings, &batch, &cancel).await;
                }
                return;
            }
        }
        while batch.len() < MAX_BATCH {
            if let Ok((event, done)) = tracked.try_recv() {
                batch.push(event);
                waiting.push(done);
            } else if let Ok(event) = events.try_recv() {
                batch.push(event);
            } else {
                break;
            }
        }
        if record(&store, &settings, &batch, &cancel).await {
            callbacks_ready.notify_waiters();
            for done in waiting {
                let _ = done.send(());
            }
        }
    }
}

/// One transaction for the batch, retried with backoff until it succeeds (or shutdown; the
/// messages concerned then stay queued and are sent again, which is at-least-once).
async fn record(
    store: &Arc<dyn Store>,
    settings: &SettingsCache,
    batch: &[StatusEvent],
    cancel: &CancellationToken,
) -> bool {
    let mut ids: Vec<String> = batch.iter().map(|e| e.message_id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut delay = Duration::from_millis(100);
    loop {
        let attempt = async {
            let (_, current) = settings.get().await?;
            store
                .record_statuses(&ids, now_ms(), &|states| lifecycle::plan(states, batch, &current))
                .await?;
            anyhow::Ok(())
        };
        match attempt.await {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), events = batch.len(), retry_in = ?delay, "recording statuses failed");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = cancel.cancelled() => return false,
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
