//! While the database is down ([`premise_store::Health`]), a message-sized write
//! ([`Store::probe`]) is tried every [`PROBE_EVERY`] until one succeeds, so Premise notices by
//! itself that the fault cleared, with or without traffic. A probe is never abandoned: while
//! one waits (on a commit that stalls), no other starts, so the prober holds one connection at
//! most.

use std::sync::Arc;
use std::time::Duration;

use premise_base::Clock;
use premise_store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often a down database is tried again.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);

pub(crate) fn spawn(
    store: Arc<dyn Store>,
    clock: Clock,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let health = store.health().clone();
        let mut changes = health.subscribe();
        loop {
            if health.down().is_none() {
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return },
                    () = cancel.cancelled() => return,
                }
                continue;
            }
            tokio::select! {
                () = clock.sleep(PROBE_EVERY) => {}
                () = cancel.cancelled() => return,
            }
            let probe = tokio::spawn({
                let store = store.clone();
                async move { store.probe().await }
            });
            tokio::select! {
                outcome = probe => match outcome {
                    Ok(outcome) => health.record(&outcome),
                    Err(e) => tracing::error!(error = %e, "the database probe failed"),
                },
                () = cancel.cancelled() => return,
            }
        }
    })
}
