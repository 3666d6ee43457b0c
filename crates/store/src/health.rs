//! What this process knows of its database's health, from the outcome of its own writes and
//! connections.
//!
//! A write that fails with an [`Outage`] (disk full, database unreachable, I/O error, ...) marks
//! the database down; a write that stores messages (an enqueue, or [`crate::Store::probe`])
//! marks it up again. A small write that succeeds (a heartbeat) proves nothing: Postgres can
//! update a row in place on a disk too full for a new message. The Postgres backend also marks
//! it down the moment a pooled connection turns out dead and a fresh one cannot be made, rather
//! than after the pool's whole acquire timeout. Callers act on it: new messages are refused at
//! once with 503, requests waiting on an unreachable database are answered 503, `/readyz`
//! fails, `/v1/health` says why.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::{Outage, StoreError};

/// An outage in progress: what, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Down {
    pub outage: Outage,
    pub since: Instant,
}

impl Down {
    /// Whether requests cannot even reach the database (as opposed to writes failing on it),
    /// or would wait on it without end (commits that stall): waiting for it is pointless, and a
    /// request given up while it waits would leave its connection stuck on the server.
    pub fn unreachable(&self) -> bool {
        matches!(self.outage, Outage::Unreachable | Outage::NotAccepting | Outage::Stalled)
    }
}

#[derive(Debug, Clone)]
pub struct Health {
    state: Arc<watch::Sender<Option<Down>>>,
}

impl Default for Health {
    fn default() -> Self {
        Self { state: Arc::new(watch::Sender::new(None)) }
    }
}

impl Health {
    /// The outage in progress, if any.
    pub fn down(&self) -> Option<Down> {
        *self.state.borrow()
    }

    /// Changes as they happen, to wait on.
    pub fn subscribe(&self) -> watch::Receiver<Option<Down>> {
        self.state.subscribe()
    }

    /// Records the outcome of a write that stores messages: a success shows the database
    /// takes them. Errors that are not outages (a bug, corrupt data) say nothing about the
    /// database's health and are ignored.
    pub fn record<T>(&self, outcome: &Result<T, StoreError>) {
        match outcome {
            Ok(_) => self.up(),
            Err(e) => self.record_failure(e),
        }
    }

    /// Records a failed write or read of any kind.
    pub fn record_failure(&self, error: &StoreError) {
        if let Some(outage) = error.outage() {
            self.failed(outage);
        }
    }

    pub fn failed(&self, outage: Outage) {
        self.state.send_if_modified(|down| {
            if down.is_some_and(|d| d.outage == outage) {
                return false;
            }
            tracing::error!(
                outage = outage.describe(),
                "the database cannot take messages; refusing them with 503 until it can"
            );
            *down = Some(Down { outage, since: Instant::now() });
            true
        });
    }

    pub fn up(&self) {
        if self.state.borrow().is_none() {
            return;
        }
        self.state.send_if_modified(|down| match down.take() {
            Some(was) => {
                tracing::warn!(
                    outage = was.outage.describe(),
                    down_for = ?was.since.elapsed(),
                    "the database takes messages again"
                );
                true
            }
            None => false,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn outages_mark_it_down_and_a_success_up() {
        let health = Health::default();
        let mut changes = health.subscribe();
        health.record::<()>(&Err(StoreError::Corrupt("a bug".into())));
        assert_eq!(health.down(), None, "not an outage");
        let started = Instant::now();
        health.failed(Outage::DiskFull);
        assert_eq!(health.down(), Some(Down { outage: Outage::DiskFull, since: started }));
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        tokio::time::advance(Duration::from_secs(3)).await;
        health.failed(Outage::DiskFull);
        assert_eq!(health.down().map(|d| d.since), Some(started), "the same outage goes on");
        assert!(!changes.has_changed().unwrap());
        health.record(&Ok(()));
        assert_eq!(health.down(), None);
    }
}
