//! How far the store's queue reaches, watched once for the whole replica. Every shard worker
//! used to read the store each `poll_interval` to find other replicas' messages: 32 queries
//! every 100 ms, nearly all of them finding nothing when this replica accepted everything
//! itself. Now one task reads the account's last committed `seq` twice per `poll_interval`,
//! and a worker reads its shard only when that is past what its window has covered.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use premise_base::Clock;
use premise_store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Default)]
pub(crate) struct QueueWatch {
    /// The highest `seq` known committed.
    last_seq: AtomicI64,
    /// When the store last said so (Unix ms; 0: never).
    read_at_ms: AtomicI64,
}

impl QueueWatch {
    /// A batch this replica committed.
    pub fn committed(&self, last_seq: i64) {
        self.last_seq.fetch_max(last_seq, Ordering::Relaxed);
    }

    /// The store's answer at `now_ms`.
    pub fn read(&self, last_seq: i64, now_ms: i64) {
        self.last_seq.fetch_max(last_seq, Ordering::Relaxed);
        self.read_at_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Whether a worker that has taken in everything up to `covered` can leave the store
    /// alone at `now_ms`: the watch is fresh (read within `fresh_ms`) and knows of nothing
    /// committed past it. A stale watch (the store did not answer) never excuses a read.
    pub fn nothing_past(&self, covered: i64, now_ms: i64, fresh_ms: i64) -> bool {
        let read_at = self.read_at_ms.load(Ordering::Relaxed);
        read_at > 0
            && now_ms - read_at <= fresh_ms
            && self.last_seq.load(Ordering::Relaxed) <= covered
    }

    /// Reads the store every `every` until cancelled.
    pub fn spawn(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        clock: Clock,
        every: Duration,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        let this = self.clone();
        crate::every::every(clock.clone(), every, cancel, move || {
            let (this, store, clock) = (this.clone(), store.clone(), clock.clone());
            async move {
                match store.committed_through().await {
                    Ok(last_seq) => this.read(last_seq, clock.now_ms()),
                    Err(e) => tracing::debug!(error = %e, "cannot read how far the queue reaches"),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_fresh_watch_that_knows_nothing_newer_excuses_a_read() {
        let watch = QueueWatch::default();
        assert!(!watch.nothing_past(10, 1_000, 200), "never read");
        watch.read(10, 1_000);
        assert!(watch.nothing_past(10, 1_200, 200));
        assert!(!watch.nothing_past(10, 1_201, 200), "stale");
        assert!(!watch.nothing_past(9, 1_100, 200), "committed past the window");
        watch.committed(12);
        assert!(!watch.nothing_past(10, 1_100, 200), "this replica's batch counts at once");
        watch.read(11, 1_150);
        assert!(watch.nothing_past(12, 1_150, 200), "never lowered");
    }
}
