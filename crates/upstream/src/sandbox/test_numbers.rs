//! The sandbox's test numbers, like a payment provider's test cards: sending to one of them
//! produces a documented outcome. [`TEST_NUMBERS`] is the one source of truth: the sandbox
//! acts on it through [`lookup`], `premise sandbox numbers` prints it through [`table`], and the
//! README carries the same table (a test checks they agree).
//!
//! The numbers sit in the `555-01xx` range that the North American numbering plan keeps for
//! fiction (`+1 650 555 01xx`), so they never collide with a real customer or with the
//! benchmark's `1555xxxxxxx` recipients. Every other valid number behaves normally.

use std::time::Duration;

/// What the sandbox does with a message to a test number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `sent`, `delivered`, `read`, even when `sandbox.lifecycle` is off.
    DeliveredAndRead,
    /// `sent`, `delivered`, and never `read`, even when `sandbox.lifecycle` is off.
    DeliveredNeverRead,
    /// The phone is offline: `sent`, and nothing after.
    NeverDelivered,
    /// `failed` with this error code (1026, 470 or 471).
    Fails(u32),
    /// Not a WhatsApp user: `/v1/contacts` says `invalid`, sends end `failed` with 1013.
    Invalid,
    /// The first `n` attempts fail transiently, the next one is acknowledged.
    TransientFirst(u32),
    /// The acknowledgement takes this long.
    SlowAck(Duration),
}

/// A range of test numbers (often one) with one behaviour. In a range, `n` is the position of a
/// number from 1: `16505550111` is n = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestNumber {
    pub first: u64,
    pub last: u64,
    kind: Kind,
    /// The outcome, as the table shows it.
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fixed(Behaviour),
    TransientFirstN,
    SlowAckSecondsN,
}

/// Every test number.
pub const TEST_NUMBERS: &[TestNumber] = &[
    TestNumber {
        first: 16505550100,
        last: 16505550100,
        kind: Kind::Fixed(Behaviour::DeliveredAndRead),
        outcome: "`sent`, `delivered`, `read` (even with `sandbox.lifecycle = false`, and outside the 24-hour window)",
    },
    TestNumber {
        first: 16505550101,
        last: 16505550101,
        kind: Kind::Fixed(Behaviour::DeliveredNeverRead),
        outcome: "`sent`, `delivered`, never `read` (even with `sandbox.lifecycle = false`, and outside the 24-hour window)",
    },
    TestNumber {
        first: 16505550102,
        last: 16505550102,
        kind: Kind::Fixed(Behaviour::NeverDelivered),
        outcome: "`sent` only: the phone is offline, never `delivered` (outside the 24-hour window too)",
    },
    TestNumber {
        first: 16505550103,
        last: 16505550103,
        kind: Kind::Fixed(Behaviour::Fails(1026)),
        outcome: "`failed`, error 1026 Receiver incapable",
    },
    TestNumber {
        first: 16505550104,
        last: 16505550104,
        kind: Kind::Fixed(Behaviour::Fails(470)),
        outcome: "`failed`, error 470 Re-engagement message (even for templates)",
    },
    TestNumber {
        first: 16505550105,
        last: 16505550105,
        kind: Kind::Fixed(Behaviour::Fails(471)),
        outcome: "`failed`, error 471 Spam rate limit hit",
    },
    TestNumber {
        first: 16505550106,
        last: 16505550106,
        kind: Kind::Fixed(Behaviour::Invalid),
        outcome: "not on WhatsApp: `/v1/contacts` says `invalid`; sends end `failed`, error 1013 User is not valid",
    },
    TestNumber {
        first: 16505550111,
        last: 16505550119,
        kind: Kind::TransientFirstN,
        outcome: "the first n attempts (n = last digit) fail transiently and are retried; then as a normal number",
    },
    TestNumber {
        first: 16505550121,
        last: 16505550129,
        kind: Kind::SlowAckSecondsN,
        outcome: "acknowledged after n seconds (n = last digit); then as a normal number",
    },
];

/// The behaviour of `wa_id` if it is a test number (digits only, as a [`premise_wire::WaId`]).
pub fn lookup(wa_id: &str) -> Option<Behaviour> {
    // A test business-scoped user id behaves as the test number it names.
    let wa_id = super::users::test_number(wa_id).unwrap_or(wa_id);
    if wa_id.len() != 11 || !wa_id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number: u64 = wa_id.parse().ok()?;
    let row = TEST_NUMBERS.iter().find(|r| (r.first..=r.last).contains(&number))?;
    let n = u32::try_from(number - row.first + 1).ok()?;
    Some(match row.kind {
        Kind::Fixed(behaviour) => behaviour,
        Kind::TransientFirstN => Behaviour::TransientFirst(n),
        Kind::SlowAckSecondsN => Behaviour::SlowAck(Duration::from_secs(u64::from(n))),
    })
}

/// Whether `wa_id` is a WhatsApp user, as `/v1/contacts` should report it: every number is,
/// except the invalid test number.
pub fn is_valid(wa_id: &str) -> bool {
    lookup(wa_id) != Some(Behaviour::Invalid)
}

/// The table of test numbers in Markdown, as the README and `premise sandbox numbers` show it.
pub fn table() -> String {
    let mut out = String::from("| Number | Outcome |\n|---|---|\n");
    for row in TEST_NUMBERS {
        let numbers = if row.first == row.last {
            format!("`{}`", row.first)
        } else {
            format!("`{}` … `{}`", row.first, row.last)
        };
        out.push_str(&format!("| {numbers} | {} |\n", row.outcome));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_found_and_others_are_normal() {
        assert_eq!(lookup("16505550100"), Some(Behaviour::DeliveredAndRead));
        assert_eq!(lookup("16505550104"), Some(Behaviour::Fails(470)));
        assert_eq!(lookup("16505550113"), Some(Behaviour::TransientFirst(3)));
        assert_eq!(lookup("16505550122"), Some(Behaviour::SlowAck(Duration::from_secs(2))));
        for normal in ["16505550107", "16505550110", "16505550120", "15550000001", "16315551234"] {
            assert_eq!(lookup(normal), None, "{normal}");
        }
        assert!(!is_valid("16505550106"));
        assert!(is_valid("15550001234"));
    }

    #[test]
    fn rows_do_not_overlap_and_the_bench_range_is_free() {
        for (i, a) in TEST_NUMBERS.iter().enumerate() {
            assert!(a.first <= a.last);
            for b in &TEST_NUMBERS[i + 1..] {
                assert!(a.last < b.first, "{a:?} overlaps {b:?}");
            }
            assert!(!a.first.to_string().starts_with("1555"));
        }
        assert_eq!(table().lines().count(), TEST_NUMBERS.len() + 2);
    }
}
