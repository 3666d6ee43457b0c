//! The 24-hour customer-service window and the clock it is judged by.
//!
//! WhatsApp let a business send free-form messages to a user only within 24 hours of the
//! user's last message; outside, only templates, and anything else ended `failed` with 470.
//! The sandbox keeps when each user last wrote, in sandbox time: the server's clock plus an
//! offset that tests move forward (`POST /v1/sandbox/clock`) instead of waiting a day. Both are
//! caches of the store's (so every replica judges alike), kept in step by [`super::world`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use premise_store::CustomerWindow;

use crate::Clock;

/// How long a user's message keeps the window open.
pub const WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// Whether a free-form message may go at `now_ms` to a user who last wrote at `last_inbound_ms`:
/// from the moment they wrote until just before 24 hours have passed.
pub fn window_open(last_inbound_ms: Option<i64>, now_ms: i64) -> bool {
    last_inbound_ms.is_some_and(|at| now_ms >= at && now_ms - at < WINDOW_MS)
}

/// The sandbox's time: the server's clock shifted by an offset that only moves when told to.
#[derive(Debug)]
pub struct SandboxClock {
    base: Clock,
    offset_ms: AtomicI64,
}

impl SandboxClock {
    pub fn new(base: Clock) -> Self {
        Self { base, offset_ms: AtomicI64::new(0) }
    }

    pub fn now_ms(&self) -> i64 {
        self.base.now_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Moves sandbox time forward (or back, if negative) by `ms`; returns the new time.
    pub fn advance(&self, ms: i64) -> i64 {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
        self.now_ms()
    }

    /// Sets sandbox time to `at_ms` (it keeps running from there); returns it.
    pub fn set(&self, at_ms: i64) -> i64 {
        self.offset_ms.store(at_ms - self.base.now_ms(), Ordering::Relaxed);
        self.now_ms()
    }

    /// How far sandbox time is ahead of real time.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    pub fn set_offset(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
    }
}

/// When each user last wrote, in sandbox time.
#[derive(Debug, Default)]
pub struct CustomerWindows {
    last_inbound: Mutex<HashMap<String, i64>>,
}

impl CustomerWindows {
    /// `wa_id` wrote at `at_ms`: the window is open for 24 hours from then.
    pub fn customer_wrote(&self, wa_id: &str, at_ms: i64) {
        if let Ok(mut map) = self.last_inbound.lock() {
            let last = map.entry(wa_id.to_owned()).or_insert(at_ms);
            *last = (*last).max(at_ms);
        }
    }

    /// Takes in what the store knows (several replicas' customers).
    pub fn merge(&self, known: &[CustomerWindow]) {
        for window in known {
            self.customer_wrote(&window.wa_id, window.wrote_at.ms());
        }
    }

    pub fn last_inbound(&self, wa_id: &str) -> Option<i64> {
        self.last_inbound.lock().ok().and_then(|map| map.get(wa_id).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_for_24_hours_from_the_last_inbound() {
        assert!(!window_open(None, 1_000));
        assert!(window_open(Some(1_000), 1_000));
        assert!(window_open(Some(1_000), 1_000 + WINDOW_MS - 1));
        assert!(!window_open(Some(1_000), 1_000 + WINDOW_MS), "closed at exactly 24 h");
        assert!(!window_open(Some(1_000), 999), "not before the user wrote");
    }

    #[test]
    fn the_clock_moves_only_when_told() {
        let clock = SandboxClock::new(Clock::manual(1_000));
        assert_eq!(clock.advance(WINDOW_MS), 1_000 + WINDOW_MS);
        assert_eq!((clock.set(5_000), clock.offset_ms()), (5_000, 4_000));
        let windows = CustomerWindows::default();
        windows.customer_wrote("1", 10);
        windows.customer_wrote("1", 5);
        assert_eq!(windows.last_inbound("1"), Some(10), "the latest message counts");
    }
}
