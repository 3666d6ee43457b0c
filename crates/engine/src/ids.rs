//! Message ids: opaque, URL-safe, 27 characters like On-Premises ids
//! (`gBEGkYiEB1VXAglK1ZEqA1YKPrU`), and unique across replicas (144 random bits).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn new_message_id() -> String {
    let mut bytes = [0u8; 18];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(&fastrand::u16(..).to_le_bytes());
    format!("gBE{}", URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::new_message_id;

    #[test]
    fn ids_look_like_onprem_ids_and_do_not_repeat() {
        let ids: HashSet<String> = (0..10_000).map(|_| new_message_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(10) {
            assert_eq!(id.len(), 27, "{id}");
            assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{id}");
        }
    }
}
