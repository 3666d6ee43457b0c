//! Error codes between the two dialects: a message's failure as On-Premises numbered it and as
//! the Cloud API does (`docs/onprem-api.md` section 12.1, matched by title; Meta published no
//! table). Used by the Cloud bridge (Cloud's answers to On-Premises webhooks) and by Cloud-form
//! webhooks (Premise's statuses to Cloud API integrations).

use crate::ErrorCode;

/// (On-Premises, Cloud) pairs of the same error.
const PAIRS: [(u32, i64); 27] = [
    (400, 131_052),
    (402, 131_042),
    (410, 131_043),
    (430, 131_045),
    (470, 131_047),
    (471, 131_048),
    (472, 130_472),
    (500, 131_000),
    (501, 131_051),
    (1001, 131_001),
    (1002, 131_002),
    (1005, 131_005),
    (1006, 131_006),
    (1008, 131_008),
    (1009, 131_009),
    (1021, 131_021),
    (1026, 131_026),
    (1031, 131_031),
    (2000, 132_000),
    (2001, 132_001),
    (2005, 132_005),
    (2007, 132_007),
    (2012, 132_012),
    (2061, 132_015),
    (2062, 132_016),
    (2068, 132_068),
    (2069, 132_069),
];

/// The On-Premises code of a Cloud code; one without a counterpart keeps Cloud's number.
pub fn onprem_code(cloud: i64) -> u32 {
    match PAIRS.iter().find(|(_, c)| *c == cloud) {
        Some((onprem, _)) => *onprem,
        None => u32::try_from(cloud).unwrap_or(500),
    }
}

/// The Cloud code of an On-Premises code; one without a counterpart keeps its number.
pub fn cloud_code(onprem: u32) -> i64 {
    if let Some((_, cloud)) = PAIRS.iter().find(|(o, _)| *o == onprem) {
        return *cloud;
    }
    match ErrorCode::from_code(onprem) {
        Some(code) => i64::from(code.cloud_code()),
        None => i64::from(onprem),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_both_ways() {
        for (onprem, cloud) in PAIRS {
            assert_eq!(onprem_code(cloud), onprem);
            assert_eq!(cloud_code(onprem), cloud);
        }
        assert_eq!(onprem_code(368), 368, "unmapped: Cloud's own");
        assert_eq!(cloud_code(1014), 131_000, "a request error: its Cloud code");
        assert_eq!(cloud_code(4242), 4242);
    }
}
