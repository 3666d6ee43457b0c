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
    events: EventSink,
    flushes: mpsc::Sender<oneshot::Sender<()>>,
}

impl Recorder {
    pub(crate) fn start(
        store: Arc<dyn Store>,
        settings: SettingsCache,
        callbacks_ready: Arc<Notify>,
        cancel: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let (events, event_rx) = mpsc::channel(50_000);
        let (flushes, flush_rx) = mpsc::channel(1_024);
        let task = tokio::spawn(run(event_rx, flush_rx, store, settings, callbacks_ready, cancel));
        (Self { events, flushes }, task)
    }

    /// Where upstreams and workers report events.
    pub fn sink(&self) -> EventSink {
        self.events.clone()
    }

    pub async fn record(&self, event: StatusEvent) {
        if self.events.send(event).await.is_err() {
            tracing::warn!(
                "status recorder stopped; an event is dropped (the message stays queued)"
            );
        }
    }

    /// Returns once every event sent before this call is in the store.
    pub async fn flush(&self) {
        let (done, recorded) = oneshot::channel();
        if self.flushes.send(done).await.is_ok() {
            let _ = recorded.await;
        }
    }
}

async fn run(
    mut events: mpsc::Receiver<StatusEvent>,
    mut flushes: mpsc::Receiver<oneshot::Sender<()>>,
    store: Arc<dyn Store>,
    settings: SettingsCache,
    callbacks_ready: Arc<Notify>,
    cancel: CancellationToken,
) {
    loop {
        let mut batch = Vec::new();
        let mut flushed = Vec::new();
        tokio::select! {
            biased;
            Some(event) = events.recv() => batch.push(event),
            Some(done) = flushes.recv() => flushed.push(done),
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
            match events.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            record(&store, &settings, &batch, &cancel).await;
            callbacks_ready.notify_waiters();
        }
        for done in flushed {
            // Everything sent before the flush request is in `batch` or recorded already,
            // unless more than MAX_BATCH were waiting: record the rest first.
            let mut rest = Vec::new();
            while let Ok(event) = events.try_recv() {
                rest.push(event);
            }
            if !rest.is_empty() {
                record(&store, &settings, &rest, &cancel).await;
                callbacks_ready.notify_waiters();
            }
            let _ = done.send(());
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
) {
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
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), events = batch.len(), retry_in = ?delay, "recording statuses failed");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = cancel.cancelled() => return,
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
