//! Realistic pacing (optional): the On-Premises client sent about 70 messages per second on one
//! shard and about 250 on 32 (`docs/onprem-api.md` section 7). With pacing on, the sandbox spaces
//! each shard's acknowledgements so the whole account gets that total, whatever Premise could
//! do, and integrators see real-world pacing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Messages per second the real client reached with `shards` shards: 70 at 1, 250 at 32, and
/// in between growing by the same factor with each doubling (90, 117, 151, 194 at 2 to 16).
pub fn total_rate(shards: u32) -> f64 {
    let doublings = f64::from(shards.clamp(1, 32)).log2();
    70.0 * (250.0_f64 / 70.0).powf(doublings / 5.0)
}

/// The time between two acknowledgements of one shard.
pub fn interval(shards: u32) -> Duration {
    Duration::from_secs_f64(f64::from(shards.max(1)) / total_rate(shards))
}

/// The next free acknowledgement slot of each shard, in microseconds: slots of a few
/// milliseconds add up exactly, whatever the clock's resolution.
#[derive(Debug, Default)]
pub struct Pacer {
    next: Mutex<HashMap<u32, i64>>,
}

impl Pacer {
    /// Reserves the shard's next slot at or after `now_us`: when (Unix µs) this acknowledgement
    /// may go.
    pub fn reserve(&self, shard: u32, shards: u32, now_us: i64) -> i64 {
        let Ok(mut next) = self.next.lock() else { return now_us };
        let free = next.entry(shard).or_insert(now_us);
        let slot = (*free).max(now_us);
        *free = slot + i64::try_from(interval(shards).as_micros()).unwrap_or(i64::MAX);
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_clients_rates() {
        assert!((total_rate(1) - 70.0).abs() < 0.01);
        assert!((total_rate(32) - 250.0).abs() < 0.01);
        assert!(total_rate(8) > total_rate(4) && total_rate(8) < total_rate(16));
        assert_eq!(interval(1), Duration::from_secs_f64(1.0 / 70.0));
    }

    #[test]
    fn slots_are_spaced_per_shard() {
        let pacer = Pacer::default();
        let now = 1_000_000;
        let slots: Vec<i64> = (0..3).map(|_| pacer.reserve(0, 1, now)).collect();
        assert_eq!(slots[0], now);
        assert_eq!(slots[2] - slots[0], 2 * 14_285, "1/70 s apart, to the microsecond");
        assert_eq!(pacer.reserve(1, 1, now), now, "another shard has its own slots");
        let later = now + 5_000_000;
        assert_eq!(pacer.reserve(0, 1, later), later, "idle time is not saved up");
    }
}
