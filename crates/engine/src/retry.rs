//! Backoff for sends that failed transiently: capped exponential with jitter, a pure function.

use std::time::Duration;

/// The wait before attempt `attempt + 1`, after `attempt` failures (1 or more): `initial ×
/// 2^(attempt-1)`, capped at `max`, then scaled by `jitter` in [0, 1) into [half, full] of it,
/// so retries of many recipients spread out instead of arriving together.
pub fn backoff(attempt: u32, initial: Duration, max: Duration, jitter: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(30);
    let full = initial.saturating_mul(1u32 << exponent).min(max);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_then_caps() {
        let full = |n| backoff(n, 100 * MS, 1000 * MS, 1.0);
        assert_eq!(
            [full(1), full(2), full(3), full(4), full(5)],
            [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS]
        );
        assert_eq!(full(u32::MAX), 1000 * MS);
        assert_eq!(backoff(1, 100 * MS, 1000 * MS, 0.0), 50 * MS);
    }

    proptest! {
        #[test]
        fn within_half_and_full_of_the_capped_value(attempt in 1u32..100, jitter in 0.0f64..1.0) {
            let d = backoff(attempt, 200 * MS, 30_000 * MS, jitter);
            let full = (200 * MS).saturating_mul(1 << (attempt - 1).min(30)).min(30_000 * MS);
            prop_assert!(d >= full / 2 && d <= full);
        }

        #[test]
        fn never_shrinks_with_more_attempts(attempt in 1u32..60) {
            prop_assert!(backoff(attempt + 1, 200 * MS, 30_000 * MS, 1.0) >= backoff(attempt, 200 * MS, 30_000 * MS, 1.0));
        }
    }
}
