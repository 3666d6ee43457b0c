//! Every message of the On-Premises contract, translated for the Cloud API, is a send Meta's
//! description of the Cloud API accepts (with the errata the fake documents).

use std::collections::HashMap;

use premise_testkit::cloud::schema::schemas;
use premise_upstream::cloud::translate::{cloud_request, uploaded_media};
use premise_wire::Message;
use serde_json::Value;

fn fixtures() -> Vec<(String, Value)> {
    premise_testkit::contract_fixtures()
}

#[test]
fn every_contract_message_is_a_valid_cloud_send() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for (name, request) in fixtures() {
        let Ok(message) = Message::parse(&request) else { continue };
        // Uploaded media become Cloud media ids (numeric strings) before sending.
        let cloud_ids: HashMap<String, String> = uploaded_media(&message)
            .into_iter()
            .enumerate()
            .map(|(i, id)| (id, format!("{}", 1_000_000_000_000_000u64 + i as u64)))
            .collect();
        let body = cloud_request(&message, &cloud_ids);
        let errors = schemas().check_send(&body);
        if !errors.is_empty() {
            failures.push(format!("{name}: {errors:?}\n  {body}"));
        }
        // Any message may carry `biz_opaque_callback_data`, which passes through.
        let mut request = request.clone();
        request["biz_opaque_callback_data"] = "order-7".into();
        if let Ok(message) = Message::parse(&request) {
            let body = cloud_request(&message, &cloud_ids);
            assert_eq!(body["biz_opaque_callback_data"], "order-7");
            let errors = schemas().check_send(&body);
            if !errors.is_empty() {
                failures.push(format!("{name} with callback data: {errors:?}"));
            }
        }
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} fixtures parsed");
    assert!(
        failures.is_empty(),
        "{} of {checked} invalid:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_fake_refuses_what_the_description_refuses() {
    let checks = schemas();
    let good = serde_json::json!({"messaging_product": "whatsapp", "recipient_type": "individual",
        "to": "16315551234", "type": "text", "text": {"body": "hi"}});
    assert_eq!(checks.check_send(&good), Vec::<String>::new());
    // On-Premises' own shapes, untranslated, are refused: preview_url outside text, `hsm`,
    // numbers as location coordinates, no messaging_product.
    for bad in [
        serde_json::json!({"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": "16315551234", "type": "text", "preview_url": true, "text": {"body": "hi"}}),
        serde_json::json!({"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": "16315551234", "type": "hsm", "hsm": {"namespace": "ns", "element_name": "x",
            "language": {"code": "en", "policy": "deterministic"}, "localizable_params": []}}),
        serde_json::json!({"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": "16315551234", "type": "location",
            "location": {"latitude": 1.5, "longitude": 2.5, "name": "a", "address": "b"}}),
        serde_json::json!({"to": "16315551234", "type": "text", "text": {"body": "hi"}}),
    ] {
        assert!(!checks.check_send(&bad).is_empty(), "accepted {bad}");
    }
    let read = serde_json::json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"});
    assert_eq!(checks.check_send(&read), Vec::<String>::new());
}

#[test]
fn metas_own_status_and_message_webhook_examples_pass_the_fakes_checks() {
    // The fake checks what it sends with the same schema; Meta's own examples must pass it
    // (the group examples aside: Premise does not handle groups, and the description's group
    // schemas disagree with their own examples).
    let spec: Value = serde_yaml::from_str(include_str!(
        "../../testkit/cloud-api/business-messaging-api_v23.0.yaml"
    ))
    .unwrap();
    let examples = spec["paths"]["/whatsapp/webhooks"]["post"]["requestBody"]["content"]
        ["application/json"]["examples"]
        .as_object()
        .unwrap();
    let mut checked = 0;
    for (name, example) in examples {
        if name.starts_with("Group") {
            continue;
        }
        let errors = schemas().check_webhook(&example["value"]);
        assert!(errors.is_empty(), "{name}: {errors:?}");
        checked += 1;
    }
    assert!(checked >= 10, "{checked}");
}
