//! The Cloud bridge, through the real binary with `upstream.kind = cloud`, against the Cloud API
//! fake (`premise_testkit::cloud`), a real HTTP server that checks every request it receives
//! against Meta's description of the API. The integration's side is what it was against
//! On-Premises: `/v1/messages`, `/v1/media`, its webhook receiving `{"statuses":[...]}` with
//! Premise's ids and customers' messages as On-Premises inbound webhooks.

use std::collections::HashMap;
use std::time::Duration;

use crate::support;
use crate::support::bridge::{Bridge, WAIT, names, start_server, unix_now};
use crate::support::pipeline::{Receiver, ask_until, wait_for};
use crate::support::{Backend, TestDb};
use premise_testkit::cloud::webhooks::{
    failed_entry, image_message, messages_payload, sha256_hex, status_entry, statuses_payload,
    text_message,
};
use premise_testkit::cloud::{
    ACCESS_TOKEN, APP_SECRET, AutoStatuses, FakeCloud, Fault, PHONE_NUMBER_ID, VERIFY_TOKEN,
};
use premise_wire::Message;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    every_contract_message_reaches_cloud_in_a_valid_shape,
    statuses_come_back_in_lifecycle_order_whatever_cloud_sends,
    refusals_fail_with_on_premises_codes,
    throttling_loses_nothing_and_keeps_each_recipients_order,
    an_expired_token_holds_messages_until_a_good_one,
    customers_messages_arrive_as_on_premises_webhooks,
    uploaded_media_is_uploaded_again_when_cloud_forgets_it,
    media_links_named_with_a_provider_are_fetched_with_its_credentials,
    a_signed_webhook_is_never_refused_for_what_it_says,
    a_crash_while_taking_a_webhook_loses_nothing,
);

/// The contract's example requests, by name (`crates/wire/tests/fixtures`).
fn fixtures() -> Vec<(String, Value)> {
    let all = premise_testkit::contract_fixtures();
    all.into_iter().filter(|(_, v)| Message::parse(v).is_ok()).collect()
}

/// Replaces every media `id` in `value` by `with`.
fn replace_media_ids(value: &mut Value, with: &str) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if ["image", "audio", "video", "document", "sticker"].contains(&key.as_str())
                    && inner.get("id").is_some()
                {
                    inner["id"] = json!(with);
                }
                replace_media_ids(inner, with);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| replace_media_ids(i, with)),
        _ => {}
    }
}

async fn every_contract_message_reaches_cloud_in_a_valid_shape(backend: Backend) {
    let db = TestDb::new(backend).await;
    let bridge = Bridge::start(&db, AutoStatuses::lifecycle()).await;
    let media = bridge.upload(&[0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4], "image/jpeg").await;
    let mut sent = Vec::new();
    for (name, mut request) in fixtures() {
        replace_media_ids(&mut request, &media);
        // Each to its own recipient: Cloud's answers come in any order across recipients.
        request["to"] = json!(format!("1631555{:04}", sent.len()));
        sent.push((name, bridge.send(request).await));
    }
    assert!(sent.len() >= 40, "{} fixtures", sent.len());
    wait_for(WAIT, "every message accepted by Cloud", || {
        bridge.fake.accepted_count() >= sent.len()
    })
    .await;
    bridge.assert_nothing_invalid();
    // The uploaded media went to Cloud once, and every message naming it carries its Cloud id.
    let uploads = bridge.fake.uploads();
    assert_eq!(uploads.len(), 1, "uploaded once, reused after");
    let (cloud_id, stored) = &uploads[0];
    assert_eq!(stored.mime_type, "image/jpeg");
    assert_eq!(stored.bytes, [0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4]);
    let bodies: Vec<String> = bridge.fake.accepted().iter().map(|a| a.body.to_string()).collect();
    assert!(bodies.iter().any(|b| b.contains(cloud_id.as_str())));
    assert!(
        bodies.iter().all(|b| !b.contains(media.as_str())),
        "no Premise media id reaches Cloud"
    );
    // Statuses come back under Premise's ids, in lifecycle order.
    for (name, id) in &sent {
        let statuses = bridge.statuses_of(id, 3).await;
        assert_eq!(names(&statuses), ["sent", "delivered", "read"], "{name}");
    }
}

async fn uploaded_media_is_uploaded_again_when_cloud_forgets_it(backend: Backend) {
    let db = TestDb::new(backend).await;
    let bridge = Bridge::start(&db, AutoStatuses::none()).await;
    let media = bridge.upload(b"%PDF-1.4 an invoice", "application/pdf").await;
    let document = |n: u32| {
        json!({"to": format!("1631556{n:04}"), "type": "document",
               "document": {"id": media, "filename": "invoice.pdf"}})
    };
    let first = bridge.send(document(1)).await;
    bridge.statuses_of(&first, 1).await;
    let uploads = bridge.fake.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].1.mime_type, "application/pdf");

    // Cloud forgets the id (an upload a while ago): the send is refused, the media uploaded
    // again and the message sent with the new id.
    bridge.fake.expire_media(&uploads[0].0);
    db.execute("UPDATE cloud_media SET uploaded_at = uploaded_at - 3600").await;
    let second = bridge.send(document(2)).await;
    assert_eq!(names(&bridge.statuses_of(&second, 1).await), ["sent"]);
    let uploads = bridge.fake.uploads();
    assert_eq!(uploads.len(), 2, "uploaded again");
    let last = bridge.fake.accepted().last().unwrap().body.clone();
    assert_eq!(last["document"]["id"], uploads[1].0.as_str());

    // An upload older than Cloud keeps media (30 days) is not reused.
    let refused_before = bridge.fake.attempts().iter().filter(|a| a.outcome.is_err()).count();
    db.execute(&format!("UPDATE cloud_media SET uploaded_at = {}", unix_now() - 30 * 86_400)).await;
    let third = bridge.send(document(3)).await;
    assert_eq!(names(&bridge.statuses_of(&third, 1).await), ["sent"]);
    assert_eq!(bridge.fake.uploads().len(), 3);
    let refusals = bridge.fake.attempts().iter().filter(|a| a.outcome.is_err()).count();
    assert_eq!(refusals, refused_before, "an old upload is replaced before Cloud refuses it");
    bridge.assert_nothing_invalid();
}

async fn statuses_come_back_in_lifecycle_order_whatever_cloud_sends(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Each webhook carries a batch of statuses in reverse order, and is delivered twice.
    let auto = AutoStatuses { reversed: true, twice: true, batch: 30, ..AutoStatuses::lifecycle() };
    let bridge = Bridge::start(&db, auto).await;
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(bridge.send_text(&format!("1631556{n:04}"), &format!("hello {n}")).await);
    }
    for id in &ids {
        let statuses = bridge.statuses_of(id, 3).await;
        assert_eq!(names(&statuses), ["sent", "delivered", "read"], "{id}");
        assert!(
            statuses.iter().all(|s| s["recipient_id"].as_str().unwrap().starts_with("1631556"))
        );
        // Per-message pricing rides on `delivered` as Cloud sent it (PMP: no conversation), and
        // every status carries the customer's business-scoped user id.
        assert_eq!(
            statuses[1]["pricing"],
            json!({"billable": false, "pricing_model": "PMP", "category": "service",
                "type": "free_customer_service"}),
            "{:?}",
            statuses[1]
        );
        assert_eq!(statuses[1].get("conversation"), None);
        let recipient = statuses[0]["recipient_id"].as_str().unwrap();
        for status in &statuses {
            assert_eq!(status["recipient_user_id"], format!("US.B{recipient}"), "{status}");
            assert_eq!(status["user_id"], format!("US.B{recipient}"), "{status}");
        }
    }
    // Once every duplicate was taken in and every callback delivered, still once each.
    wait_for(WAIT, "every webhook taken", || bridge.fake.webhooks().idle()).await;
    wait_for_outbox_empty(&db).await;
    for id in &ids {
        assert_eq!(bridge.statuses_of(id, 3).await.len(), 3, "each status once: {id}");
    }
    // A status of an id Premise never gave out is counted and otherwise ignored.
    let now = unix_now();
    let unknown = statuses_payload(&[status_entry(
        "wamid.NOT-PREMISES",
        "delivered",
        "16315550000",
        now - 3600,
    )]);
    assert_eq!(bridge.fake.webhooks().post(&unknown).await, 200);
    let (_, metrics) = bridge.server.get("/metrics?format=json", Some(&bridge.token)).await;
    let unknown_count = metrics["metrics"]["premise_upstream_statuses_total"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["labels"]["message"] == "unknown")
        .map(|d| d["value"].as_f64().unwrap());
    assert_eq!(unknown_count, Some(1.0), "{metrics}");
    bridge.assert_nothing_invalid();
}

async fn refusals_fail_with_on_premises_codes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let bridge = Bridge::start(&db, AutoStatuses::none()).await;
    let cases = [
        (131026, 1026),
        (131047, 470),
        (131048, 471),
        (132000, 2000),
        (132001, 2001),
        (131051, 501),
        (131008, 1008),
        (131009, 1009),
        (368, 368),
    ];
    let mut ids = Vec::new();
    for (n, (cloud, _)) in cases.iter().enumerate() {
        let to = format!("1631557{n:04}");
        bridge
            .fake
            .fail_recipient(&to, [Fault::cloud(400, *cloud, "Cloud's title", "Cloud's details")]);
        ids.push(bridge.send_text(&to, "hi").await);
    }
    for (id, (cloud, onprem)) in ids.iter().zip(cases) {
        let statuses = bridge.statuses_of(id, 1).await;
        assert_eq!(names(&statuses), ["failed"], "{cloud}");
        let error = &statuses[0]["errors"][0];
        assert_eq!(error["code"], onprem, "{cloud}: {error}");
        assert_eq!(error["title"], "Cloud's title");
        assert_eq!(error["details"], "Cloud's details");
    }
    // A failure Cloud reports later, by webhook, after accepting the message.
    let id = bridge.send_text("16315579999", "hi").await;
    bridge.statuses_of(&id, 1).await;
    let wamid = bridge.fake.accepted().last().unwrap().wamid.clone();
    let failed = statuses_payload(&[failed_entry(
        &wamid,
        "16315579999",
        unix_now(),
        131047,
        "Re-engagement message",
        "More than 24 hours have passed since the recipient last replied.",
    )]);
    assert_eq!(bridge.fake.webhooks().post(&failed).await, 200);
    let statuses = bridge.statuses_of(&id, 2).await;
    assert_eq!(names(&statuses), ["sent", "failed"]);
    assert_eq!(statuses[1]["errors"][0]["code"], 470);
    bridge.assert_nothing_invalid();
}

async fn throttling_loses_nothing_and_keeps_each_recipients_order(backend: Backend) {
    let db = TestDb::new(backend).await;
    let bridge = Bridge::start(&db, AutoStatuses::none()).await;
    // A storm of 429s with Retry-After for whoever sends next, 5xx and slow answers, and a
    // pair rate limit burst on one recipient.
    bridge.fake.fail_next(std::iter::repeat_n(Fault::rate_limited(1), 10).chain([
        Fault::server_error(),
        Fault::Bare { http: 502 },
        Fault::Slow(Duration::from_millis(300)),
    ]));
    let slow_one = "16315580000";
    bridge.fake.fail_recipient(slow_one, std::iter::repeat_n(Fault::pair_rate_limited(), 5));
    let recipients: Vec<String> = (0..10).map(|n| format!("1631558{n:04}")).collect();
    let mut accepted: HashMap<String, Vec<String>> = HashMap::new();
    for round in 0..5 {
        for to in &recipients {
            let id = bridge.send_text(to, &format!("{to} #{round}")).await;
            accepted.entry(to.clone()).or_default().push(id);
        }
    }
    wait_for(WAIT, "all 50 accepted by Cloud", || bridge.fake.accepted_count() >= 50).await;
    let by_recipient = |to: &str| -> Vec<String> {
        bridge
            .fake
            .accepted()
            .iter()
            .filter(|a| a.to == to)
            .map(|a| a.body["text"]["body"].as_str().unwrap().to_owned())
            .collect()
    };
    for to in &recipients {
        let expected: Vec<String> = (0..5).map(|round| format!("{to} #{round}")).collect();
        assert_eq!(by_recipient(to), expected, "each once, in order, for {to}");
    }
    // Retry-After was honoured: no send went out within a second of a 429.
    let attempts = bridge.fake.attempts();
    let first_429 = attempts.iter().position(|a| a.outcome == Err(130429)).unwrap();
    let next = attempts[first_429 + 1..].iter().find(|a| a.outcome != Err(130429)).unwrap();
    assert!(
        next.at.duration_since(attempts[first_429].at) >= Duration::from_millis(950),
        "a send {:?} after a 429 asking for 1 s",
        next.at.duration_since(attempts[first_429].at)
    );
    // The pair rate limit held back only its recipient: others were accepted meanwhile.
    let slow_first_ok =
        attempts.iter().position(|a| a.to == slow_one && a.outcome.is_ok()).unwrap();
    let others_before =
        attempts[..slow_first_ok].iter().filter(|a| a.to != slow_one && a.outcome.is_ok()).count();
    assert!(others_before >= 9, "only {others_before} others went before the held recipient");
    // Every message is `sent` once, none failed.
    for ids in accepted.values() {
        for id in ids {
            assert_eq!(names(&bridge.statuses_of(id, 1).await), ["sent"], "{id}");
        }
    }
    bridge.assert_nothing_invalid();
}

async fn an_expired_token_holds_messages_until_a_good_one(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fake = FakeCloud::start().await;
    fake.accept_token("a-new-token");
    let server = start_server(&db, &fake, ACCESS_TOKEN).await;
    let token = server.admin_token().await;
    let receiver = Receiver::start().await;
    server.use_webhook(&token, &receiver.url()).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let (status, id, _) = server.send_text(&token, &format!("1631559{n:04}"), "hi").await;
        assert_eq!(status, StatusCode::CREATED);
        ids.push(id.unwrap());
    }
    let health = ask_until(
        WAIT,
        "health to say the token is refused",
        || server.get("/v1/health", Some(&token)),
        |(_, body)| body["health"]["gateway_status"] == "disconnected",
    )
    .await
    .1;
    let details = health["errors"][0]["details"].as_str().unwrap();
    assert!(details.contains("access token") && details.contains("190"), "{health}");
    assert!(!health.to_string().contains(ACCESS_TOKEN), "the token is never shown");
    assert!(!server.logs().contains(ACCESS_TOKEN), "the token is never logged");
    assert_eq!(fake.accepted_count(), 0);
    assert!(receiver.statuses().is_empty(), "nothing failed: {:?}", receiver.statuses());
    drop(server);

    // The operator sets the new token and restarts: every held message goes.
    let server = start_server(&db, &fake, "a-new-token").await;
    wait_for(WAIT, "the held messages delivered", || fake.accepted_count() >= 5).await;
    wait_for(WAIT, "their sent statuses", || receiver.statuses().len() >= 5).await;
    let statuses = receiver.by_message();
    for id in &ids {
        assert_eq!(statuses[id], ["sent"], "{id}");
    }
    let token = server.admin_token().await;
    let (_, health) = ask_until(
        WAIT,
        "health connected with the number's details",
        || server.get("/v1/health", Some(&token)),
        |(_, body)| body["cloud"]["verified_name"].is_string(),
    )
    .await;
    assert_eq!(health["health"]["gateway_status"], "connected", "{health}");
    assert_eq!(health["cloud"]["quality_rating"], "GREEN");
    assert_eq!(health["cloud"]["phone_number_id"], PHONE_NUMBER_ID);
    assert!(fake.invalid().is_empty(), "{:?}", fake.invalid());
}

async fn customers_messages_arrive_as_on_premises_webhooks(backend: Backend) {
    let db = TestDb::new(backend).await;
    let bridge = Bridge::start(&db, AutoStatuses::none()).await;
    let now = unix_now();
    let customer = "16505551234";
    let text = messages_payload(
        "Sheena Nelson",
        customer,
        &[text_message(customer, "wamid.CUSTOMER-TEXT", now, "Does it come in another color?")],
    );
    assert_eq!(bridge.fake.webhooks().post(&text).await, 200);
    // Delivered twice, as Meta may: recorded once.
    assert_eq!(bridge.fake.webhooks().post(&text).await, 200);
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let cloud_media = bridge.fake.add_customer_media(&bytes, "image/jpeg");
    let image = messages_payload(
        "Sheena Nelson",
        customer,
        &[image_message(
            customer,
            "wamid.CUSTOMER-IMAGE",
            now + 1,
            &cloud_media,
            "image/jpeg",
            &sha256_hex(&bytes),
            "this one",
        )],
    );
    assert_eq!(bridge.fake.webhooks().post(&image).await, 200);

    let inbound = || {
        bridge
            .receiver
            .hits()
            .into_iter()
            .filter(|h| h.body.get("messages").is_some())
            .map(|h| h.body)
            .collect::<Vec<Value>>()
    };
    wait_for(WAIT, "two inbound webhooks", || inbound().len() >= 2).await;
    let received = inbound();
    assert_eq!(received.len(), 2, "{received:?}");
    let first = &received[0];
    assert_eq!(
        first["contacts"][0],
        json!({"profile": {"name": "Sheena Nelson"}, "wa_id": customer})
    );
    assert_eq!(
        first["messages"][0],
        json!({"from": customer, "id": "wamid.CUSTOMER-TEXT", "timestamp": now.to_string(),
               "type": "text", "text": {"body": "Does it come in another color?"}})
    );
    let picture = &received[1]["messages"][0];
    assert_eq!(picture["type"], "image");
    assert_eq!(picture["image"]["caption"], "this one");
    let media_id = picture["image"]["id"].as_str().unwrap();
    assert_ne!(media_id, cloud_media, "the integration gets Premise's media id");
    let served = bridge.media(media_id).await;
    assert_eq!(served, (StatusCode::OK, "image/jpeg".to_owned(), bytes), "served by /v1/media");

    // Marking it read sends Cloud's read receipt for it.
    let (status, body) = bridge
        .server
        .send_json(
            Method::PUT,
            "/v1/messages/wamid.CUSTOMER-IMAGE",
            Some(&bridge.token),
            json!({"status": "read"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(bridge.fake.read_receipts(), ["wamid.CUSTOMER-IMAGE"]);
    bridge.assert_nothing_invalid();
}

#[tokio::test]
async fn webhooks_must_be_signed_and_the_setup_check_needs_the_verify_token() {
    let db = TestDb::new(Backend::Sqlite).await;
    let bridge = Bridge::start(&db, AutoStatuses::none()).await;
    let verify = |token: &str| {
        bridge.server.http.get(bridge.server.url(&format!(
            "/cloud/webhook?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444"
        )))
    };
    let response = verify(VERIFY_TOKEN).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(response.text().await.unwrap(), "1158201444");
    assert_eq!(verify("wrong").send().await.unwrap().status(), StatusCode::FORBIDDEN);

    let now = unix_now();
    let payload = messages_payload(
        "Ann",
        "16505550001",
        &[text_message("16505550001", "wamid.SIGNED", now, "hi")],
    );
    let body = payload.to_string().into_bytes();
    let webhooks = bridge.fake.webhooks();
    assert_eq!(webhooks.post_raw(body.clone(), None).await, 401, "no signature");
    let wrong = format!("sha256={}", "0".repeat(64));
    assert_eq!(webhooks.post_raw(body.clone(), Some(&wrong)).await, 401, "a wrong signature");
    webhooks.sign_with("another-apps-secret");
    assert_eq!(webhooks.post(&payload).await, 401, "signed with another secret");
    // Re-serialised JSON is not what was signed.
    webhooks.sign_with(APP_SECRET);
    let signature = webhooks.sign(&body);
    let mut spaced = payload.to_string().replace(':', ": ").into_bytes();
    spaced.push(b'\n');
    assert_eq!(webhooks.post_raw(spaced, Some(&signature)).await, 401);
    // Nothing of the refused ones was recorded.
    let (status, _) = bridge
        .server
        .send_json(
            Method::PUT,
            "/v1/messages/wamid.SIGNED",
            Some(&bridge.token),
            json!({"status": "read"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(webhooks.post_raw(body, Some(&signature)).await, 200, "the right signature");
    wait_for(WAIT, "the signed one delivered", || {
        bridge.receiver.hits().iter().any(|h| h.body["messages"][0]["id"] == "wamid.SIGNED")
    })
    .await;
    let (_, metrics) = bridge.server.get("/metrics?format=json", Some(&bridge.token)).await;
    let refused = metrics["metrics"]["premise_upstream_webhooks_total"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["labels"]["result"] == "bad_signature")
        .map(|d| d["value"].as_f64().unwrap());
    assert_eq!(refused, Some(4.0), "{metrics}");
}

#[tokio::test]
async fn in_cloud_mode_contacts_are_valid_by_digits_templates_go_to_cloud_and_sandbox_is_gone() {
    let db = TestDb::new(Backend::Sqlite).await;
    let bridge = Bridge::start(&db, AutoStatuses::none()).await;
    let (status, body) = bridge
        .server
        .send_json(
            Method::POST,
            "/v1/contacts",
            Some(&bridge.token),
            json!({"blocking": "wait", "contacts": ["+1 (631) 555-1234"], "force_check": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["contacts"][0],
        json!({"input": "+1 (631) 555-1234", "status": "valid", "wa_id": "16315551234"})
    );
    // A template no registry knows goes to Cloud, which judges it.
    bridge
        .send(json!({"to": "16315551234", "type": "template", "template": {"namespace": "ns",
            "name": "not_in_any_registry", "language": {"policy": "deterministic", "code": "en"}}}))
        .await;
    wait_for(WAIT, "the template at Cloud", || bridge.fake.accepted_count() == 1).await;
    assert_eq!(bridge.fake.accepted()[0].body["template"]["name"], "not_in_any_registry");
    let (status, _) = bridge.server.get("/v1/sandbox/templates", Some(&bridge.token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    bridge.assert_nothing_invalid();
}

#[tokio::test]
async fn a_webhook_for_a_message_sent_by_another_replica_is_recorded() {
    let db = TestDb::new(Backend::Postgres).await;
    let fake = FakeCloud::start().await;
    let a = start_server(&db, &fake, ACCESS_TOKEN).await;
    let token = a.admin_token().await;
    let receiver = Receiver::start().await;
    a.use_webhook(&token, &receiver.url()).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(a.send_text(&token, &format!("1631560{n:04}"), "from A").await.1.unwrap());
    }
    wait_for(WAIT, "A's messages at Cloud", || fake.accepted_count() >= 5).await;
    // Replica B joins; Meta delivers the statuses to B.
    let b = start_server(&db, &fake, ACCESS_TOKEN).await;
    fake.send_webhooks_to(&b.url("/cloud/webhook"), AutoStatuses::none());
    let now = unix_now();
    let entries: Vec<Value> = fake
        .accepted()
        .iter()
        .flat_map(|a| ["delivered", "read"].map(|s| status_entry(&a.wamid, s, &a.to, now)))
        .collect();
    assert_eq!(fake.webhooks().post(&statuses_payload(&entries)).await, 200);
    wait_for(WAIT, "delivered and read of A's messages", || {
        let by = receiver.by_message();
        ids.iter().all(|id| by.get(id).is_some_and(|s| s.len() == 3))
    })
    .await;
    let by = receiver.by_message();
    for id in &ids {
        assert_eq!(by[id], ["sent", "delivered", "read"], "{id}");
    }
}

/// Premise killed (-9) after keeping a webhook (a status and a customer's image) and before
/// processing it, while Cloud holds the media lookup: nothing is lost. The restarted Premise
/// processes the kept webhook by itself; Meta's redelivery is then answered at once; each status
/// and the message reach the integration once.
async fn a_crash_while_taking_a_webhook_loses_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fake = FakeCloud::start().await;
    let mut server = start_server(&db, &fake, ACCESS_TOKEN).await;
    fake.send_webhooks_to(&server.url("/cloud/webhook"), AutoStatuses::none());
    let token = server.admin_token().await;
    let receiver = Receiver::start().await;
    server.use_webhook(&token, &receiver.url()).await;
    let id = server.send_text(&token, "16315561234", "hi").await.1.unwrap();
    wait_for(WAIT, "the message at Cloud", || fake.accepted_count() == 1).await;
    let wamid = fake.accepted()[0].wamid.clone();

    // One webhook with a status and a customer's image. Cloud holds the media lookup, and
    // Premise is killed while waiting for it: it has not answered the webhook.
    let now = unix_now();
    let bytes = b"\xff\xd8\xff\xe0 a customer's photo".to_vec();
    let media = fake.add_customer_media(&bytes, "image/jpeg");
    let mut payload = statuses_payload(&[status_entry(&wamid, "delivered", "16315561234", now)]);
    let image = messages_payload(
        "Ann",
        "16315561234",
        &[image_message(
            "16315561234",
            "wamid.PHOTO",
            now,
            &media,
            "image/jpeg",
            &sha256_hex(&bytes),
            "",
        )],
    );
    let change = image["entry"][0]["changes"][0].clone();
    payload["entry"][0]["changes"].as_array_mut().unwrap().push(change);
    fake.set_latency(Duration::from_secs(30));
    let posting = {
        let body = payload.to_string().into_bytes();
        let signature = fake.webhooks().sign(&body);
        let url = server.url("/cloud/webhook");
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .header("x-hub-signature-256", signature)
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    wait_for(WAIT, "Premise asking Cloud for the media", || fake.media_lookups() >= 1).await;
    // What was recorded before the crash is called back before it, so that a callback is not
    // counted twice for the dispatcher's own crash window (a callback POSTed but not yet
    // deleted is POSTed again after a restart: at least once): what is counted below is the
    // webhook's recording.
    wait_for_outbox_empty(&db).await;
    server.kill();
    assert!(posting.await.unwrap().is_err(), "the webhook was never answered");

    // The restarted Premise processes what it kept, without waiting for Meta (which, had it
    // been answered, would never deliver it again).
    fake.set_latency(Duration::ZERO);
    let server = start_server(&db, &fake, ACCESS_TOKEN).await;
    fake.send_webhooks_to(&server.url("/cloud/webhook"), AutoStatuses::none());
    wait_for(WAIT, "the inbound image, from the kept webhook", || {
        receiver.hits().iter().any(|h| h.body["messages"][0]["id"] == "wamid.PHOTO")
    })
    .await;
    // Meta delivers it again all the same: answered at once, recorded once.
    let answered = fake.webhooks().post(&payload).await;
    assert_eq!(answered, 200, "{}", server.logs());
    wait_for(WAIT, "delivered", || receiver.by_message().get(&id).is_some_and(|s| s.len() >= 2))
        .await;
    // Once every callback is delivered, count: once each.
    wait_for_outbox_empty(&db).await;
    let photos =
        receiver.hits().iter().filter(|h| h.body["messages"][0]["id"] == "wamid.PHOTO").count();
    assert_eq!(photos, 1);
    assert_eq!(receiver.by_message()[&id], ["sent", "delivered"]);
}

#[test]
fn cloud_mode_needs_its_settings_and_names_the_missing_one() {
    for (missing, env) in [
        (
            "cloud.phone_number_id",
            vec![("PREMISE_CLOUD__ACCESS_TOKEN", "t"), ("PREMISE_CLOUD__APP_SECRET", "s")],
        ),
        (
            "cloud.access_token",
            vec![("PREMISE_CLOUD__PHONE_NUMBER_ID", "1"), ("PREMISE_CLOUD__APP_SECRET", "s")],
        ),
        (
            "cloud.app_secret",
            vec![("PREMISE_CLOUD__PHONE_NUMBER_ID", "1"), ("PREMISE_CLOUD__ACCESS_TOKEN", "t")],
        ),
    ] {
        let dir = premise_testkit::TempDir::new("premise-cloud-config");
        let output = support::premise()
            .args(["migrate", "--database-url", &dir.sqlite_url()])
            .env("PREMISE_UPSTREAM__KIND", "cloud")
            .envs(env)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{missing}: {stderr}");
        assert!(stderr.contains(missing), "{missing}: {stderr}");
    }
}

/// Waits until the callback outbox is empty: every webhook to the integration delivered.
async fn wait_for_outbox_empty(db: &TestDb) {
    let count = || db.scalar("SELECT COUNT(*) FROM callbacks");
    ask_until(WAIT, "every callback delivered", count, |n| *n == 0).await;
}

/// A media host that wants credentials: `/photo.jpg` with `Bearer cdn-secret`,
/// `/invoice.pdf` with basic `files:pass`; anything else, or the wrong credentials, 401/404.
async fn start_media_host() -> (String, tokio::task::JoinHandle<()>) {
    use axum::http::{HeaderMap, header};
    async fn serve(
        axum::extract::Path(file): axum::extract::Path<String>,
        headers: HeaderMap,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        match (file.as_str(), auth) {
            ("photo.jpg", Some("Bearer cdn-secret")) => {
                ([(header::CONTENT_TYPE, "image/jpeg")], b"\xFF\xD8 a photo".to_vec())
                    .into_response()
            }
            // base64("files:pass")
            ("invoice.pdf", Some("Basic ZmlsZXM6cGFzcw==")) => {
                ([(header::CONTENT_TYPE, "application/pdf")], b"%PDF-1.4 invoice".to_vec())
                    .into_response()
            }
            ("photo.jpg" | "invoice.pdf", _) => {
                axum::http::StatusCode::UNAUTHORIZED.into_response()
            }
            _ => axum::http::StatusCode::NOT_FOUND.into_response(),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/{file}", axum::routing::get(serve));
    (url, tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }))
}

async fn media_links_named_with_a_provider_are_fetched_with_its_credentials(backend: Backend) {
    let db = TestDb::new(backend).await;
    let bridge = Bridge::start(&db, AutoStatuses::none()).await;
    let (host, _serving) = start_media_host().await;
    let providers = json!([
        {"name": "cdn", "type": "www", "config": {"bearer": "cdn-secret"}, "hosts": ["127.0.0.1"]},
        {"name": "files", "type": "www", "config": {"basic": {"username": "files", "password": "pass"}},
            "hosts": ["127.0.0.1"]}
    ]);
    let (status, answer) = bridge
        .server
        .send_json(
            Method::POST,
            "/v1/settings/application/media/providers",
            Some(&bridge.token),
            providers,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // Their secrets are write-only.
    let (_, shown) =
        bridge.server.get("/v1/settings/application/media/providers", Some(&bridge.token)).await;
    let shown = shown.to_string();
    assert!(!shown.contains("cdn-secret") && !shown.contains("\"pass\""), "{shown}");
    assert!(shown.contains("\"username\":\"files\""), "{shown}");

    // With a provider: Premise fetches the link with its credentials and sends Cloud an id.
    let photo = bridge
        .send(json!({"to": "16315550101", "type": "image",
            "image": {"link": format!("{host}/photo.jpg"), "provider": {"name": "cdn"}, "caption": "new"}}))
        .await;
    assert_eq!(names(&bridge.statuses_of(&photo, 1).await), ["sent"]);
    let invoice = bridge
        .send(json!({"to": "16315550102", "type": "document",
            "document": {"link": format!("{host}/invoice.pdf"), "provider": {"name": "files"},
                "filename": "invoice.pdf"}}))
        .await;
    assert_eq!(names(&bridge.statuses_of(&invoice, 1).await), ["sent"]);
    let uploads = bridge.fake.uploads();
    assert_eq!(uploads.len(), 2);
    assert_eq!(
        (uploads[0].1.mime_type.as_str(), uploads[0].1.bytes.as_slice()),
        ("image/jpeg", b"\xFF\xD8 a photo".as_slice())
    );
    assert_eq!(uploads[1].1.bytes, b"%PDF-1.4 invoice");
    let accepted = bridge.fake.accepted();
    let sent = |to: &str| accepted.iter().find(|a| a.to == to).unwrap().body.clone();
    assert_eq!(sent("16315550101")["image"], json!({"id": uploads[0].0, "caption": "new"}));
    assert_eq!(sent("16315550102")["document"]["id"], uploads[1].0.as_str());

    // Without a provider the link goes to Cloud as it is.
    let plain = bridge
        .send(json!({"to": "16315550103", "type": "image", "image": {"link": "https://example.com/a.jpg"}}))
        .await;
    assert_eq!(names(&bridge.statuses_of(&plain, 1).await), ["sent"]);
    assert_eq!(
        bridge.fake.accepted().last().unwrap().body["image"]["link"],
        "https://example.com/a.jpg"
    );

    // A link its host refuses fails the message with On-Premises' media download error.
    let gone = bridge
        .send(json!({"to": "16315550104", "type": "image",
            "image": {"link": format!("{host}/gone.jpg"), "provider": {"name": "cdn"}}}))
        .await;
    let statuses = bridge.statuses_of(&gone, 1).await;
    assert_eq!(names(&statuses), ["failed"]);
    assert_eq!(statuses[0]["errors"][0]["code"], 400, "{}", statuses[0]);

    // A provider Premise does not know: the link goes to Cloud as it is, for Cloud to fetch.
    let unknown = bridge
        .send(json!({"to": "16315550105", "type": "image",
            "image": {"link": format!("{host}/photo.jpg"), "provider": {"name": "nope"}}}))
        .await;
    assert_eq!(names(&bridge.statuses_of(&unknown, 1).await), ["sent"]);
    let last = bridge.fake.accepted().last().unwrap().body.clone();
    assert_eq!(last["image"], json!({"link": format!("{host}/photo.jpg")}));
    assert_eq!(bridge.fake.uploads().len(), 2);
    bridge.assert_nothing_invalid();
}

/// A signed webhook is taken whatever it says: one POST carrying a phone customer's message, a
/// username customer's message without a phone number (shaped as Meta's "Business-scoped user
/// IDs" page shows it: `contacts[].user_id`, `contacts[].profile.username`, no `from`), a
/// `user_id_update` change and a change Premise does not map answers 200; both customers'
/// messages reach the integration (the username customer by BSUID), the changed id as a
/// `system` message, the rest is kept with its reason, counted and listed for an admin; the same
/// webhook again is one journal entry and one message each. Twenty malformed but signed variants
/// are all answered 200, and those that cannot be mapped kept. Only a body that is not JSON is
/// refused. (Before, the first such POST was refused whole with 400/1025, and the phone
/// customer's message with it.)
async fn a_signed_webhook_is_never_refused_for_what_it_says(backend: Backend) {
    let db = TestDb::new(backend).await;
    let bridge = Bridge::start(&db, AutoStatuses::none()).await;
    let webhooks = bridge.fake.webhooks();
    let post = |value: &Value| {
        let body = value.to_string().into_bytes();
        let signature = webhooks.sign(&body);
        async move { webhooks.post_raw(body, Some(&signature)).await }
    };
    let now = unix_now();
    let mut mixed = messages_payload(
        "Ann",
        "16315551234",
        &[text_message("16315551234", "wamid.PHONE", now, "from a phone")],
    );
    let value = &mut mixed["entry"][0]["changes"][0]["value"];
    value["contacts"][0]["user_id"] = json!("US.13491208655302741918");
    value["contacts"].as_array_mut().unwrap().push(json!({
        "profile": {"name": "Bo", "username": "bo.bakes"}, "user_id": "US.99887766554433221100"}));
    value["messages"].as_array_mut().unwrap().push(json!({"id": "wamid.USERNAME",
        "timestamp": now.to_string(), "type": "text", "text": {"body": "from a username"}}));
    let changes = mixed["entry"][0]["changes"].as_array_mut().unwrap();
    changes.push(json!({"field": "user_id_update",
        "value": {"user_id": {"previous": "US.1", "current": "US.2"}}}));
    changes.push(json!({"field": "message_template_status_update",
        "value": {"event": "APPROVED", "message_template_id": 1}}));
    assert_eq!(post(&mixed).await, 200);
    assert_eq!(post(&mixed).await, 200, "delivered again");
    let receiver = &bridge.receiver;
    let inbound = |id: &'static str| {
        move || receiver.hits().iter().any(|h| h.body["messages"][0]["id"] == id)
    };
    wait_for(WAIT, "the phone customer's message", inbound("wamid.PHONE")).await;
    wait_for(WAIT, "the username customer's message", inbound("wamid.USERNAME")).await;
    wait_for(WAIT, "the changed id", || {
        bridge.receiver.hits().iter().any(|h| h.body["messages"][0]["type"] == "system")
    })
    .await;
    let hits = bridge.receiver.hits();
    let of = |id: &str| {
        hits.iter().find(|h| h.body["messages"][0]["id"] == id).map(|h| h.body.clone()).unwrap()
    };
    assert_eq!(
        of("wamid.PHONE")["contacts"][0],
        json!({"profile": {"name": "Ann"}, "wa_id": "16315551234",
            "user_id": "US.13491208655302741918"})
    );
    let username = of("wamid.USERNAME");
    assert_eq!(username["messages"][0]["from"], "US.99887766554433221100");
    assert_eq!(
        username["contacts"][0],
        json!({"profile": {"name": "Bo", "username": "bo.bakes"},
            "wa_id": "US.99887766554433221100", "user_id": "US.99887766554433221100"})
    );
    let system = hits.iter().find(|h| h.body["messages"][0]["type"] == "system").unwrap();
    let system = &system.body["messages"][0];
    assert_eq!(system["from"], "US.1", "{system}");
    assert_eq!(system["system"]["type"], "user_changed_number", "{system}");
    assert_eq!(system["system"]["new_wa_id"], "US.2", "{system}");
    assert_eq!(system["system"]["body"], "User US.1 changed from US.1 to US.2", "{system}");
    let delivered: Vec<Value> = hits
        .iter()
        .filter(|h| h.body.get("messages").is_some())
        .map(|h| h.body["messages"][0]["id"].clone())
        .collect();
    assert_eq!(delivered.len(), 3, "each once: {delivered:?}");
    let (status, listed) =
        bridge.server.get("/v1/cloud/webhooks/unmapped", Some(&bridge.token)).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let kept = listed["webhooks"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "one journal entry for two deliveries: {listed}");
    let parts = kept[0]["parts"].as_array().unwrap();
    let whys: Vec<&str> = parts.iter().map(|p| p["why"].as_str().unwrap()).collect();
    assert_eq!(parts.len(), 1, "{whys:?}");
    assert!(whys[0].contains("message_template_status_update"), "{whys:?}");
    assert_eq!(parts[0]["part"]["value"]["event"], "APPROVED", "the part kept whole");
    // Processed again (as after an upgrade): what was recorded is not recorded twice.
    let id = kept[0]["id"].as_str().unwrap();
    let again = format!("/v1/cloud/webhooks/{id}/process");
    let (status, body) =
        bridge.server.send_json(Method::POST, &again, Some(&bridge.token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["webhooks"][0]["unmapped"], 1, "{body}");
    let (status, _) = bridge
        .server
        .send_json(
            Method::POST,
            "/v1/cloud/webhooks/999999/process",
            Some(&bridge.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Twenty malformed but signed variants: each taken (200) and kept, none lost.
    let good = |id: &str| text_message("16315551234", id, now, "ok");
    let variants: Vec<Value> = vec![
        json!([]),
        json!({}),
        json!({"object": "page"}),
        json!({"entry": "x"}),
        json!({"entry": [1]}),
        json!({"entry": [{"changes": "x"}]}),
        json!({"entry": [{"changes": [{"field": "messages"}]}]}),
        json!({"entry": [{"changes": [{"field": "messages", "value": 3}]}]}),
        json!({"entry": [{"changes": [{"field": "account_update", "value": {}}]}]}),
        json!({"entry": [{"changes": [{"field": "user_preferences", "value": {}}]}]}),
        json!({"entry": [{"changes": [{"field": "message_template_status_update", "value": {}}]}]}),
        json!({"entry": [{"changes": [{"field": "messages", "value": {"statuses": [{"status": "read"}]}}]}]}),
        json!({"entry": [{"changes": [{"field": "messages", "value": {"statuses": [{"id": "wamid.X", "status": "teleported", "timestamp": "1"}]}}]}]}),
        json!({"entry": [{"changes": [{"field": "messages", "value": {"statuses": [{"id": "wamid.X", "status": "read", "timestamp": "soon"}]}}]}]}),
        json!({"entry": [{"changes": [{"field": "messages", "value": {"messages": [{"from": "16315551234", "timestamp": "1"}]}}]}]}),
        json!({"entry": [{"changes": [{"field": "messages", "value": {"messages": [{"from": "16315551234", "id": "wamid.Y"}]}}]}]}),
        json!({"entry": [{"changes": [{"field": "messages", "value": {"messages": [7]}}]}]}),
        json!({"entry": [{"changes": [{"field": "messages", "value": {"messages": [{"from": "abc", "id": "wamid.Z", "timestamp": "1", "type": "text", "text": {"body": "?"}}]}}]}]}),
        json!({"entry": [{"changes": [{"field": "messages", "value": {"messages": [good("wamid.GOOD"), {"id": "wamid.BAD"}]}}]}]}),
        json!({"entry": [{"changes": [{"field": "messages", "value": {"messages": [{"id": "wamid.USER2", "timestamp": "1", "type": "text", "text": {"body": "u"}}], "contacts": [{"user_id": "US.123", "profile": {"username": "u"}}]}}]}]}),
    ];
    assert_eq!(variants.len(), 20);
    for variant in &variants {
        assert_eq!(post(variant).await, 200, "{variant}");
    }
    wait_for(WAIT, "the good message beside a bad one", || {
        bridge.receiver.hits().iter().any(|h| h.body["messages"][0]["id"] == "wamid.GOOD")
    })
    .await;
    wait_for(WAIT, "the username customer known only by contacts", || {
        bridge.receiver.hits().iter().any(|h| h.body["messages"][0]["from"] == "US.123")
    })
    .await;
    let (_, listed) = bridge.server.get("/v1/cloud/webhooks/unmapped", Some(&bridge.token)).await;
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 20, "each kept: {listed}");
    let phone = bridge
        .receiver
        .hits()
        .iter()
        .filter(|h| h.body["messages"][0]["id"] == "wamid.PHONE")
        .count();
    assert_eq!(phone, 1, "the phone customer's message once, after three processings");
    let scrape = bridge
        .server
        .http
        .get(bridge.server.url("/metrics"))
        .bearer_auth(&bridge.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(scrape.contains("premise_upstream_webhook_parts_unmapped_total 21"), "{scrape}");
    let not_json = webhooks.sign(b"not json");
    assert_eq!(webhooks.post_raw(b"not json".to_vec(), Some(&not_json)).await, 400);
}
