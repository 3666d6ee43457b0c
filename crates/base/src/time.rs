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

    /// The moment in UTC as people write it: `YYYY-MM-DD HH:MM:SS` (to the second).
    pub fn utc(self) -> String {
        let secs = self.secs();
        let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
    }

    /// A moment written `YYYY-MM-DDTHH:MM` or `YYYY-MM-DD HH:MM:SS` (seconds optional), in UTC.
    pub fn parse_utc(text: &str) -> Option<Self> {
        let (date, time) = text.trim().split_once(['T', ' '])?;
        let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
        let (y, m, day) = (d.next()??, d.next()??, d.next()??);
        let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
        let (h, min, s) = (t.next()??, t.next()??, t.next().flatten().unwrap_or(0));
        let valid =
            (1..=12).contains(&m) && (1..=31).contains(&day) && h < 24 && min < 60 && s < 60;
        valid
            .then(|| Self::from_secs(days_from_civil(y, m, day) * 86_400 + h * 3600 + min * 60 + s))
    }
}

/// The calendar date of `days` since 1970-01-01, proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`): (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a calendar date (the inverse, Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

    #[test]
    fn moments_read_in_utc_and_back() {
        assert_eq!(UnixMs(0).utc(), "1970-01-01 00:00:00");
        assert_eq!(UnixMs(951_782_399_000).utc(), "2000-02-28 23:59:59");
        assert_eq!(UnixMs(951_868_800_000).utc(), "2000-03-01 00:00:00");
        for at in [0, 951_782_399_000, 951_868_800_000, 1_796_607_452_000] {
            assert_eq!(UnixMs::parse_utc(&UnixMs(at).utc()), Some(UnixMs(at)));
        }
        assert_eq!(UnixMs::parse_utc("2026-12-07T01:02"), UnixMs::parse_utc("2026-12-07 01:02:00"));
        for bad in ["", "2026-13-01T00:00", "2026-12-07", "noonT12:00", "2026-12-07T25:00"] {
            assert_eq!(UnixMs::parse_utc(bad), None, "{bad}");
        }
    }
}
