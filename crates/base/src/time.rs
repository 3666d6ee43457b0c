//! [`UnixMs`], the one way a moment crosses a boundary in Premise: milliseconds since the Unix
//! epoch, whatever unit a column or a wire format keeps it in (the store converts at its SQL,
//! a webhook at its JSON).

use std::time::Duration;

use crate::millis;

/// A moment, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMs(pub i64);

impl UnixMs {
    /// The moment `secs` seconds after the epoch.
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn ms(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded down), for what counts in seconds (a token's
    /// `exp`, the columns kept in seconds).
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// `duration` later (saturating).
    pub fn plus(self, duration: Duration) -> Self {
        Self(self.0.saturating_add(millis(duration)))
    }

    /// `duration` earlier (saturating).
    pub fn minus(self, duration: Duration) -> Self {
        Self(self.0.saturating_sub(millis(duration)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_down_and_durations_saturate() {
        assert_eq!(UnixMs(1_999).secs(), 1);
        assert_eq!(UnixMs(-1).secs(), -1);
        assert_eq!(UnixMs::from_secs(3), UnixMs(3_000));
        assert_eq!(UnixMs(5).plus(Duration::from_millis(7)), UnixMs(12));
        assert_eq!(UnixMs(5).minus(Duration::from_secs(1)), UnixMs(-995));
        assert_eq!(UnixMs(i64::MAX).plus(Duration::from_secs(1)), UnixMs(i64::MAX));
    }
}
