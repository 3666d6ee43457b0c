//! Every example request of the contract's sources is accepted: the two seed documents and
//! Meta's On-Premises Postman collection, one fixture file per example (see
//! `fixtures/README.md`). Each accepted message also survives a round trip through its stored
//! form.

use std::path::PathBuf;

use premise_wire::Message;
use premise_wire::messages::parse_read;
use serde_json::Value;

fn fixtures() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut all: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap();
            let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, value)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[test]
fn every_source_example_is_accepted() {
    let all = fixtures();
    let count = |prefix: &str| all.iter().filter(|(n, _)| n.starts_with(prefix)).count();
    assert!(count("seed000_") >= 20, "seed 000 examples");
    assert_eq!(count("seed003_"), 5, "seed 003 examples");
    assert_eq!(count("postman_"), 23, "Postman message requests");
    let mut failures = Vec::new();
    for (name, request) in &all {
        if name == "postman_mark_message_as_read" {
            if let Err(e) = parse_read(request) {
                failures.push(format!("{name}: {e}"));
            }
            continue;
        }
        match Message::parse(request) {
            Ok(message) => {
                let stored = serde_json::to_value(&message).unwrap();
                match Message::parse(&stored) {
                    Ok(again) => assert_eq!(again, message, "{name}: round trip of {stored}"),
                    Err(e) => failures.push(format!("{name}: stored form {stored} refused: {e}")),
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "refused:\n{}", failures.join("\n"));
}

/// A few spot checks of what the stored (canonical On-Premises) form looks like.
#[test]
fn stored_forms_are_canonical() {
    let all = fixtures();
    let get = |name: &str| {
        let request = &all.iter().find(|(n, _)| n == name).unwrap().1;
        serde_json::to_value(Message::parse(request).unwrap()).unwrap()
    };
    // A single parameter object becomes an array; string indexes stay strings.
    let cta = get("postman_send_message_template_call_to_action");
    assert!(cta["template"]["components"][0]["parameters"].is_array(), "{cta}");
    assert_eq!(cta["template"]["components"][2]["index"], "1");
    // Flat media parameters are nested under their type.
    let media = get("postman_send_message_template_media");
    assert_eq!(
        media["template"]["components"][0]["parameters"][0]["image"]["link"],
        "https://example.com/media/banner.jpg"
    );
    // Coordinates given as strings are stored as numbers.
    let location = get("postman_send_location_message");
    assert_eq!(location["location"]["latitude"], 37.483307);
    // hsm is carried as the equivalent template.
    let hsm = get("seed000_hsm");
    assert_eq!(hsm["type"], "template");
    assert_eq!(hsm["template"]["name"], "hello_world");
    assert_eq!(hsm["template"]["components"][0]["parameters"][1]["currency"]["code"], "USD");
    // `wa-id` (the seed's spelling) is stored as `wa_id`.
    let contacts = get("seed000_contacts");
    assert_eq!(contacts["contacts"][0]["phones"][0]["wa_id"], "16315551234");
    // Cloud's messaging_product is not part of the On-Premises request.
    let cloud = get("seed003_text_template");
    assert!(cloud.get("messaging_product").is_none(), "{cloud}");
}

/// Template component, sub-type and parameter types in any case, as the Cloud API takes them
/// (clients send `"BODY"`); stored in lower case.
#[test]
fn template_types_in_any_case() {
    let request = serde_json::json!({"to": "16315551234", "type": "template", "template": {
        "name": "order_update", "language": {"code": "en_US"},
        "components": [
            {"type": "HEADER", "parameters": [{"type": "IMAGE", "image": {"link": "https://example.com/a.jpg"}}]},
            {"type": "Body", "parameters": [{"type": "TEXT", "text": "Ada"}]},
            {"type": "BUTTON", "sub_type": "QUICK_REPLY", "index": "0",
             "parameters": [{"type": "PAYLOAD", "payload": "yes"}]}]}});
    let stored = serde_json::to_value(Message::parse(&request).unwrap()).unwrap();
    let components = &stored["template"]["components"];
    assert_eq!(components[0]["type"], "header");
    assert_eq!(components[0]["parameters"][0]["type"], "image");
    assert_eq!(components[1]["type"], "body");
    assert_eq!(components[1]["parameters"][0]["type"], "text");
    assert_eq!(components[2]["sub_type"], "quick_reply");
    assert_eq!(components[2]["parameters"][0]["type"], "payload");
}
