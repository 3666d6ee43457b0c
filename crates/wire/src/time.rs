//! The On-Premises timestamp text `YYYY-MM-DD HH:MM:SS+00:00` (the calendar is
//! `premise_base::UnixMs::utc`'s).

/// Formats Unix seconds as the `expires_after` text of a login answer.
pub fn format_expires_after(unix_seconds: i64) -> String {
    format!("{}+00:00", premise_base::UnixMs::from_secs(unix_seconds).utc())
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
