//! The sender's right to send for a shard, as this replica reckons it: its lease's validity,
//! kept by the shard pool (renewed on the database's clock, counted down on this replica's).
//! An upstream asks [`Fence::holds`] immediately before a message leaves, after every wait
//! (pacing, media uploads, a slow acknowledgement), so a replica whose lease lapsed meanwhile
//! (frozen, or cut off from the database while its new owner sends) sends nothing more. The
//! one duplicate this leaves is a send already on the wire when the lease lapsed.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::{Clock, SendOutcome};

#[derive(Debug, Clone)]
pub struct Fence {
    /// Until when (Unix ms, on `clock`) the lease holds.
    valid_until: Arc<AtomicI64>,
    clock: Clock,
}

impl Fence {
    pub fn new(valid_until: Arc<AtomicI64>, clock: Clock) -> Self {
        Self { valid_until, clock }
    }

    /// A fence that always holds, for sends outside a shard's lease (tests, tools).
    pub fn open(clock: Clock) -> Self {
        Self::new(Arc::new(AtomicI64::new(i64::MAX)), clock)
    }

    /// Whether the lease still holds now.
    pub fn holds(&self) -> bool {
        self.clock.now_ms() < self.valid_until.load(Ordering::Relaxed)
    }

    /// `None` while the lease holds; otherwise the outcome of a send that did not leave: the
    /// message stays queued, for the shard's new owner (or this one, if it takes it back).
    pub fn refuse(&self) -> Option<SendOutcome> {
        (!self.holds())
            .then(|| SendOutcome::transient("the shard's lease lapsed before the send; not sent"))
    }
}

impl PartialEq for Fence {
    /// Fences do not make messages differ.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
