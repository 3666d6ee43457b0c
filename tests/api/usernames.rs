//! Customers known by business-scoped user id (BSUID) and username, through the Cloud bridge: the
//! real binary against the Cloud API fake, with webhooks shaped as Meta's "Business-scoped user
//! IDs" page (May 2026) and the partner pages that follow it (Dualhook's "BSUID Webhook
//! Changes", YCloud's "Business-Scoped User IDs API & Webhook Updates") show them.

use crate::support::bridge::{Bridge, WAIT, names, unix_now};
use crate::support::pipeline::wait_for;
use crate::support::{Backend, TestDb};
use premise_testkit::cloud::webhooks::{
    image_message, messages_payload, sha256_hex, text_message, user_id_update_payload,
    username_payload,
};
use premise_testkit::cloud::{AutoStatuses, PHONE_NUMBER_ID};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    a_username_customer_round_trips_through_the_bridge,
    a_number_change_reaches_the_integration_as_a_system_message,
);

const BO: &str = "US.99887766554433221100";

/// The inbound webhooks the integration received, by Cloud's message id.
fn inbound(bridge: &Bridge, id: &str) -> Option<Value> {
    bridge.receiver.hits().into_iter().map(|h| h.body).find(|b| b["messages"][0]["id"] == id)
}

async fn inbound_arrives(bridge: &Bridge, id: &str) -> Value {
    wait_for(WAIT, &format!("the inbound {id}"), || inbound(bridge, id).is_some()).await;
    inbound(bridge, id).unwrap()
}

/// A username customer (no phone number anywhere) writes a text, the integration replies by
/// BSUID (the fake receives `recipient`, not `to`), statuses come back with the 2026 fields and
/// per-message pricing and reach the integration with `recipient_id` = the BSUID it sent to; the
/// customer replies to that message with an image, which arrives with Premise's ids for the
/// media and the message replied to. The Cloud dialect's `recipient`, `/v1/contacts` and a
/// read receipt with a typing indicator work for them too.
async fn a_username_customer_round_trips_through_the_bridge(backend: Backend) {
    let db = TestDb::new(backend).await;
    let bridge = Bridge::start(&db, AutoStatuses::lifecycle()).await;
    let now = unix_now();
    let hello = username_payload(
        "Bo",
        "bo.bakes",
        BO,
        &[text_message("", "wamid.BO-1", now, "do you deliver?")],
    );
    assert_eq!(bridge.fake.webhooks().post(&hello).await, 200);
    let first = inbound_arrives(&bridge, "wamid.BO-1").await;
    assert_eq!(
        first["contacts"][0],
        json!({"profile": {"name": "Bo", "username": "bo.bakes"}, "wa_id": BO, "user_id": BO})
    );
    assert_eq!(first["messages"][0]["from"], BO);
    assert_eq!(first["messages"][0]["text"]["body"], "do you deliver?");

    // The reply, by BSUID: stored, sent as `recipient`, its statuses back by BSUID.
    let reply = bridge.send_text(BO, "we do").await;
    let statuses = bridge.statuses_of(&reply, 3).await;
    assert_eq!(names(&statuses), ["sent", "delivered", "read"]);
    for status in &statuses {
        assert_eq!(status["recipient_id"], BO, "what the integration sent to: {status}");
        assert_eq!(status["recipient_user_id"], BO, "{status}");
    }
    assert_eq!(
        statuses[1]["pricing"],
        json!({"billable": false, "pricing_model": "PMP", "category": "service",
            "type": "free_customer_service"})
    );
    let sent = bridge.fake.accepted().last().unwrap().clone();
    assert_eq!(sent.body["recipient"], BO);
    assert_eq!(sent.body.get("to"), None, "{}", sent.body);
    assert_eq!(sent.body["text"]["body"], "we do");

    // The customer answers it with a photo.
    let bytes = b"\xff\xd8\xff\xe0 Bo's cake".to_vec();
    let media = bridge.fake.add_customer_media(&bytes, "image/jpeg");
    let mut photo = image_message(
        "",
        "wamid.BO-2",
        now + 1,
        &media,
        "image/jpeg",
        &sha256_hex(&bytes),
        "this one",
    );
    photo["context"] = json!({"from": "15550100000", "id": sent.wamid});
    let photo = username_payload("Bo", "bo.bakes", BO, &[photo]);
    assert_eq!(bridge.fake.webhooks().post(&photo).await, 200);
    let second = inbound_arrives(&bridge, "wamid.BO-2").await;
    let message = &second["messages"][0];
    assert_eq!((message["from"].as_str(), message["type"].as_str()), (Some(BO), Some("image")));
    assert_eq!(message["context"]["id"], reply.as_str(), "Premise's id of the message replied to");
    let media_id = message["image"]["id"].as_str().unwrap();
    assert_eq!(bridge.media(media_id).await, (StatusCode::OK, "image/jpeg".to_owned(), bytes));

    // A reaction to the reply names Premise's id of it, as a reply does.
    let reaction = json!({"id": "wamid.BO-3", "timestamp": (now + 2).to_string(), "type": "reaction",
        "reaction": {"message_id": sent.wamid, "emoji": "\u{1F44D}"}});
    let reaction = username_payload("Bo", "bo.bakes", BO, &[reaction]);
    assert_eq!(bridge.fake.webhooks().post(&reaction).await, 200);
    let third = inbound_arrives(&bridge, "wamid.BO-3").await;
    assert_eq!(third["messages"][0]["from"], BO);
    assert_eq!(third["messages"][0]["reaction"]["message_id"], reply.as_str());

    // Read, with a typing indicator: Cloud gets both.
    let (status, body) = bridge
        .server
        .send_json(
            Method::PUT,
            "/v1/messages/wamid.BO-2",
            Some(&bridge.token),
            json!({"status": "read", "typing_indicator": {"type": "text"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(bridge.fake.read_receipts(), ["wamid.BO-2"]);
    assert_eq!(bridge.fake.typing_indicators(), ["wamid.BO-2"]);

    // The Cloud API's own dialect: `recipient`, answered with the customer's `user_id`.
    let (status, answer) = bridge
        .server
        .send_json(
            Method::POST,
            &format!("/v23.0/{PHONE_NUMBER_ID}/messages"),
            Some(&bridge.token),
            json!({"messaging_product": "whatsapp", "recipient": BO, "type": "text",
                "text": {"body": "by the Cloud dialect"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["contacts"][0], json!({"input": BO, "user_id": BO}));
    wait_for(WAIT, "the Cloud dialect's send at Cloud", || {
        bridge.fake.accepted().iter().any(|a| a.body["text"]["body"] == "by the Cloud dialect")
    })
    .await;

    // `/v1/contacts` knows a BSUID for what it is; a malformed one is refused naming `to`.
    let (status, contacts) = bridge
        .server
        .send_json(
            Method::POST,
            "/v1/contacts",
            Some(&bridge.token),
            json!({"blocking": "wait", "contacts": [BO, "US.ENT.11815799212886844830", "US.x-1"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{contacts}");
    let statuses: Vec<&str> = contacts["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["valid", "valid", "invalid"], "{contacts}");
    assert_eq!(contacts["contacts"][0]["wa_id"], BO);
    let (status, refused) = bridge
        .server
        .send_json(
            Method::POST,
            "/v1/messages",
            Some(&bridge.token),
            json!({"to": "US.12-34", "type": "text", "text": {"body": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused["errors"][0]["details"].as_str().unwrap().starts_with("to"), "{refused}");
    bridge.assert_nothing_invalid();
}

/// Meta reports a customer's changed number three ways; each reaches the integration as the
/// On-Premises `system` message of a changed number, naming the old and the new identifiers:
/// a `user_id_update` webhook, the customer's number arriving under a new BSUID, and Cloud's own
/// `system` message (passed on with `new_wa_id`, as On-Premises named it).
async fn a_number_change_reaches_the_integration_as_a_system_message(backend: Backend) {
    let db = TestDb::new(backend).await;
    let bridge = Bridge::start(&db, AutoStatuses::none()).await;
    let now = unix_now();
    let hello = |name: &str, phone: &str, user_id: &str, id: &str| {
        let mut payload = messages_payload(name, phone, &[text_message(phone, id, now, "hi")]);
        payload["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"] = json!(user_id);
        payload
    };
    assert_eq!(
        bridge.fake.webhooks().post(&hello("Ann", "16315550001", "US.A1", "wamid.A1")).await,
        200
    );
    inbound_arrives(&bridge, "wamid.A1").await;

    // 1. `user_id_update`, with the new number.
    let update = user_id_update_payload("US.A1", "US.A2", Some("16315550002"));
    assert_eq!(bridge.fake.webhooks().post(&update).await, 200);
    let system = |from: &str| {
        bridge
            .receiver
            .hits()
            .into_iter()
            .map(|h| h.body)
            .find(|b| b["messages"][0]["type"] == "system" && b["messages"][0]["from"] == from)
    };
    wait_for(WAIT, "the changed number", || system("16315550001").is_some()).await;
    let changed = &system("16315550001").unwrap()["messages"][0];
    assert_eq!(changed["system"]["type"], "user_changed_number", "{changed}");
    assert_eq!(changed["system"]["new_wa_id"], "16315550002", "{changed}");
    assert_eq!(changed["system"]["user_id"], "US.A2", "{changed}");
    assert_eq!(changed["system"]["previous_user_id"], "US.A1", "{changed}");
    assert_eq!(
        changed["system"]["body"],
        "User 16315550001 changed from 16315550001 to 16315550002"
    );

    // 2. A known number under a new BSUID.
    assert_eq!(
        bridge.fake.webhooks().post(&hello("Cy", "16315550003", "US.C1", "wamid.C1")).await,
        200
    );
    inbound_arrives(&bridge, "wamid.C1").await;
    assert_eq!(
        bridge.fake.webhooks().post(&hello("Cy", "16315550003", "US.C2", "wamid.C2")).await,
        200
    );
    inbound_arrives(&bridge, "wamid.C2").await;
    wait_for(WAIT, "the new BSUID", || system("16315550003").is_some()).await;
    let changed = &system("16315550003").unwrap()["messages"][0];
    assert_eq!(changed["system"]["body"], "User 16315550003 changed from US.C1 to US.C2");
    assert_eq!(changed["system"]["new_wa_id"], "16315550003");

    // 3. Cloud's own system message.
    let cloud_system = json!({"from": "16315550004", "id": "wamid.SYS", "timestamp": now.to_string(),
        "type": "system", "system": {"body": "User Di changed from 16315550004 to 16315550005",
            "wa_id": "16315550005", "type": "user_changed_number"}});
    let mut payload = messages_payload("Di", "16315550004", &[cloud_system]);
    payload["entry"][0]["changes"][0]["value"].as_object_mut().unwrap().remove("contacts");
    assert_eq!(bridge.fake.webhooks().post(&payload).await, 200);
    let passed = inbound_arrives(&bridge, "wamid.SYS").await;
    assert_eq!(passed["messages"][0]["system"]["new_wa_id"], "16315550005", "{passed}");
    assert_eq!(passed["messages"][0]["system"]["type"], "user_changed_number");

    // Each told once, however often Meta repeats itself.
    assert_eq!(bridge.fake.webhooks().post(&update).await, 200);
    let count = |from: &str| {
        bridge
            .receiver
            .hits()
            .iter()
            .filter(|h| {
                h.body["messages"][0]["type"] == "system" && h.body["messages"][0]["from"] == from
            })
            .count()
    };
    assert_eq!((count("16315550001"), count("16315550003")), (1, 1));
    bridge.assert_nothing_invalid();
}
