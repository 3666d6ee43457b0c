//! The On-Premises timestamp text `YYYY-MM-DD HH:MM:SS+00:00`, computed without a calendar
//! library: a proleptic Gregorian conversion from days since the epoch (Howard Hinnant's
//! `civil_from_days`).

/// Formats Unix seconds as the `expires_after` text of a login answer.
pub fn format_expires_after(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}+00:00",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::format_expires_after;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_expires_after(0), "1970-01-01 00:00:00+00:00");
        // The sample in Meta's docs: 2018-09-11 12:48:55+00:00.
        assert_eq!(format_expires_after(1_536_670_135), "2018-09-11 12:48:55+00:00");
        // A leap day, and the last second of a year.
        assert_eq!(format_expires_after(1_709_208_000), "2024-02-29 12:00:00+00:00");
        assert_eq!(format_expires_after(1_735_689_599), "2024-12-31 23:59:59+00:00");
    }
}
