//! Pacing sends to Cloud: at most `max_per_second` across the whole deployment, so Premise never
//! provokes a throttle (130429) in steady state. A replica cannot see the others' sends, so the
//! rate is shared out by shard: each shard may send `max_per_second / shards` a second, and a
//! replica's share is the shards it holds. The slots lie on one grid of wall-clock time, a
//! send every `1 / max_per_second` seconds, dealt out to the shards in turn (shard `s` of `n`
//! owns every `n`-th slot from the `s`-th): however the shards are spread over replicas, no two
//! sends share a slot and no second holds more than `max_per_second` of them. When Cloud
//! throttles the number anyway (or refuses the token), every send of this replica waits until
//! the pause is over.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::Clock;

/// How late a send may leave after its slot. One that wakes later (its task was not run in
/// time: a busy machine, a stalled runtime) takes a new slot instead: otherwise the sends of a
/// stall would leave together with those due after it, and a second could carry the rate and
/// the stall's sends too (a 10-minute soak at 1,000/s saw 1,135 in one second). Late by at most
/// this, any second holds at most `max_per_second` × (1 + this / 1 s): 2% over.
const LATE: f64 = 20.0;

#[derive(Debug)]
pub(crate) struct Limiter {
    per_second: f64,
    clock: Clock,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Each shard's next free slot, Unix ms (fractional: 1,000/s over 32 shards is one per
    /// 32 ms, and rounding would drift).
    next: HashMap<u32, f64>,
    /// No send before this, Unix ms.
    paused_until: f64,
}

impl Limiter {
    pub(crate) fn new(max_per_second: u32, clock: Clock) -> Self {
        Self { per_second: f64::from(max_per_second.max(1)), clock, state: Mutex::default() }
    }

    /// Waits for a slot of `shard` (of `shards`), if one comes within `max_wait`; otherwise
    /// takes none and answers how long until the next one (the send is tried again then, so
    /// that no send waits here so long that the engine's send timeout cuts its request).
    pub(crate) async fn acquire(
        &self,
        shard: u32,
        shards: u32,
        max_wait: Duration,
    ) -> Result<(), Duration> {
        loop {
            let slot = self.reserve(shard, shards, max_wait)?;
            self.clock.sleep_until_ms(slot.ceil() as i64).await;
            // A pause that began while this send waited holds it too.
            let paused_until = self.state.lock().map_or(0.0, |s| s.paused_until);
            let late = self.clock.now_ms() as f64 - slot;
            if paused_until <= slot && late <= LATE {
                return Ok(());
            }
        }
    }

    /// Takes the shard's next slot if it comes within `max_wait`: when this send may go,
    /// Unix ms; otherwise how long until that slot.
    fn reserve(&self, shard: u32, shards: u32, max_wait: Duration) -> Result<f64, Duration> {
        let step = 1_000.0 / self.per_second;
        let shards = shards.max(1);
        let interval = step * f64::from(shards);
        let phase = step * f64::from(shard % shards);
        let now = self.clock.now_ms() as f64;
        let Ok(mut state) = self.state.lock() else { return Ok(now) };
        let paused_until = state.paused_until;
        let next = state.next.entry(shard).or_insert(now);
        let earliest = next.max(now).max(paused_until);
        // The shard's first slot of the grid at or after `earliest`.
        let slot = phase + ((earliest - phase) / interval).ceil() * interval;
        if slot - now > max_wait.as_secs_f64() * 1_000.0 {
            return Err(Duration::from_secs_f64((slot - now) / 1_000.0));
        }
        *next = slot + interval;
        Ok(slot)
    }

    /// Holds every send for `pause` from now.
    pub(crate) fn pause(&self, pause: Duration) {
        let until = self.clock.now_ms() as f64 + pause.as_secs_f64() * 1_000.0;
        if let Ok(mut state) = self.state.lock() {
            state.paused_until = state.paused_until.max(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000;
    const WAIT: Duration = Duration::from_secs(60);

    #[test]
    fn spaces_each_shard_by_its_share() {
        let limiter = Limiter::new(1_000, Clock::manual(T0));
        // 32 shards: each may send every 32 ms, shard 5 in the 5th millisecond of each 32.
        let slots: Vec<f64> = (0..4).map(|_| limiter.reserve(5, 32, WAIT).unwrap()).collect();
        let t0 = T0 as f64;
        assert_eq!(slots, [t0 + 5.0, t0 + 37.0, t0 + 69.0, t0 + 101.0]);
        assert_eq!(limiter.reserve(6, 32, WAIT), Ok(t0 + 6.0), "the next shard, the next slot");
        // 80/s on one shard: 12.5 ms apart, so 80 sends fill exactly one second.
        let limiter = Limiter::new(80, Clock::manual(T0));
        let last = (0..80).map(|_| limiter.reserve(0, 1, WAIT).unwrap()).last().unwrap();
        assert_eq!(last, T0 as f64 + 79.0 * 12.5);
    }

    #[test]
    fn all_shards_together_never_exceed_the_rate_in_any_second() {
        // 80/s over 32 shards, every shard sending as fast as it may, starting together: in
        // any one-second window, at most 80 slots.
        let limiter = Limiter::new(80, Clock::manual(T0));
        let mut slots: Vec<f64> = (0..32)
            .flat_map(|shard| (0..10).map(move |_| shard))
            .map(|shard| limiter.reserve(shard, 32, WAIT).unwrap())
            .collect();
        slots.sort_by(f64::total_cmp);
        slots.dedup();
        assert_eq!(slots.len(), 320, "no two sends share a slot");
        for (i, start) in slots.iter().enumerate() {
            let within = slots[i..].iter().take_while(|s| **s < start + 1_000.0).count();
            assert!(within <= 80, "{within} sends in the second from {start}");
        }
    }

    #[test]
    fn a_slot_too_far_away_is_not_taken() {
        // 1/s on one shard: the second slot is a second away.
        let limiter = Limiter::new(1, Clock::manual(T0));
        assert_eq!(T0 % 1_000, 0, "T0 lies on the grid");
        let short = Duration::from_millis(500);
        assert_eq!(limiter.reserve(0, 1, short), Ok(T0 as f64));
        assert_eq!(limiter.reserve(0, 1, short), Err(Duration::from_secs(1)));
        assert_eq!(limiter.reserve(0, 1, short), Err(Duration::from_secs(1)), "nothing was taken");
        assert_eq!(limiter.reserve(0, 1, WAIT), Ok(T0 as f64 + 1_000.0));
    }

    #[test]
    fn a_pause_holds_every_shard_and_spacing_resumes_after_it() {
        let limiter = Limiter::new(100, Clock::manual(T0));
        limiter.pause(Duration::from_secs(2));
        let after = T0 as f64 + 2_000.0;
        assert_eq!(limiter.reserve(0, 1, WAIT), Ok(after));
        assert_eq!(limiter.reserve(0, 1, WAIT), Ok(after + 10.0), "spaced after the pause");
        assert_eq!(limiter.reserve(3, 4, WAIT), Ok(after + 30.0), "shard 3's slot after it");
    }

    /// A send that wakes long after its slot (its task was not run in time) takes the next
    /// free one: it does not leave together with the sends due then.
    #[tokio::test]
    async fn a_send_woken_late_takes_a_new_slot() {
        let clock = Clock::manual(T0);
        let limiter = std::sync::Arc::new(Limiter::new(10, clock.clone()));
        limiter.acquire(0, 1, WAIT).await.unwrap();
        let late = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire(0, 1, WAIT).await }
        });
        tokio::task::yield_now().await;
        // Its slot was T0 + 100; it runs only at T0 + 300.
        clock.advance(Duration::from_millis(300));
        tokio::time::timeout(Duration::from_secs(5), late).await.unwrap().unwrap().unwrap();
        let t0 = T0 as f64;
        assert_eq!(
            limiter.reserve(0, 1, WAIT),
            Ok(t0 + 400.0),
            "the late send took the slot at T0 + 300, so the next is a step later"
        );
        // Late by no more than `LATE`, a send goes in its own slot (T0 + 500, at T0 + 520).
        let on_time = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire(0, 1, WAIT).await }
        });
        tokio::task::yield_now().await;
        clock.advance(Duration::from_millis(200 + LATE as u64));
        tokio::time::timeout(Duration::from_secs(5), on_time).await.unwrap().unwrap().unwrap();
        assert_eq!(limiter.reserve(0, 1, WAIT), Ok(t0 + 600.0));
    }

    #[tokio::test]
    async fn acquire_waits_for_the_slot_on_the_clock() {
        let clock = Clock::manual(T0);
        let limiter = std::sync::Arc::new(Limiter::new(10, clock.clone()));
        limiter.acquire(0, 1, WAIT).await.unwrap();
        let waiting = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire(0, 1, WAIT).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        clock.advance(Duration::from_millis(100));
        tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap().unwrap();
    }
}
