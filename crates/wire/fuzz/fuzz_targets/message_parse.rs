//! Any bytes that are JSON: `Message::parse` must not panic, and whatever it accepts must
//! serialise to a stored request that parses back to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use premise_wire::Message;
use premise_wire::messages::{parse_cloud_read, parse_read};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<Value>(data) else { return };
    let _ = parse_read(&request);
    let _ = parse_cloud_read(&request);
    if let Ok(message) = Message::parse(&request) {
        let stored = serde_json::to_value(&message).expect("a message serialises");
        let again = Message::parse(&stored).expect("the stored form parses");
        assert_eq!(again, message, "round trip of {stored}");
        let _ = message.media_id();
    }
});
