//! `POST /v1/account/shards` (`docs/onprem-api.md` section 7).

use serde_json::Value;

use crate::Rejection;
use crate::messages::kind;

/// The shard counts On-Premises multiconnect allowed.
pub const SHARD_COUNTS: [u32; 6] = [1, 2, 4, 8, 16, 32];

/// A valid shard count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardCount(u32);

impl ShardCount {
    pub fn new(count: u32) -> Option<Self> {
        SHARD_COUNTS.contains(&count).then_some(Self(count))
    }

    pub const fn get(self) -> u32 {
        self.0
    }

    /// Parses `{"cc","phone_number","shards","pin"?}`; numbers may be strings.
    pub fn parse_request(request: &Value) -> Result<Self, Rejection> {
        for field in ["cc", "phone_number"] {
            match request.get(field) {
                None | Some(Value::Null) => return Err(Rejection::missing(field)),
                Some(Value::String(s))
                    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) => {}
                Some(Value::Number(n)) if n.is_u64() => {}
                Some(other) => {
                    return Err(Rejection::invalid(
                        field,
                        format!("expected digits, got {}", kind(other)),
                    ));
                }
            }
        }
        let raw = match request.get("shards") {
            None | Some(Value::Null) => return Err(Rejection::missing("shards")),
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse::<u64>().ok(),
            Some(_) => None,
        };
        raw.and_then(|n| u32::try_from(n).ok())
            .and_then(Self::new)
            .ok_or_else(|| Rejection::invalid("shards", "must be one of 1, 2, 4, 8, 16, 32"))
    }
}

/// The shard of a recipient: IEEE CRC-32 of its WhatsApp id modulo the shard count, as the
/// On-Premises Webapp routed (`crc32($to) % shards`).
pub fn shard_of(recipient_crc: u32, shards: u32) -> u32 {
    recipient_crc % shards.max(1)
}
