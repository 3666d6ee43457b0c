//! How much is waiting in the store, for backpressure. Counting rows on every request would
//! put a scan on the hot path; instead a task refreshes the counts, and this replica adds what
//! it commits in between, so a burst cannot run far past the bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use premise_base::Clock;
use premise_store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Default)]
pub struct Backlog {
    queued: Arc<AtomicU64>,
    callbacks: Arc<AtomicU64>,
}

impl Backlog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    pub fn callbacks(&self) -> u64 {
        self.callbacks.load(Ordering::Relaxed)
    }

    pub fn add_queued(&self, n: u64) {
        self.queued.fetch_add(n, Ordering::Relaxed);
    }

    pub fn spawn_refresh(
        &self,
        store: Arc<dyn Store>,
        every: Duration,
        clock: Clock,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        let this = self.clone();
        crate::every::every(clock, every, cancel, move || {
            let (this, store) = (this.clone(), store.clone());
            async move {
                match store.backlog().await {
                    Ok(b) => {
                        this.queued.store(b.queued, Ordering::Relaxed);
                        this.callbacks.store(b.callbacks, Ordering::Relaxed);
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot count the backlog"),
                }
            }
        })
    }
}
