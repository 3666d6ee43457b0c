//! The outbound pipeline end to end: accept → queue → shard worker → sandbox → status
//! webhooks, on both backends, through the real binary and a real webhook receiver.

use std::collections::HashMap;
use std::time::Duration;

use crate::support::pipeline::{
    Mode, Receiver, ask_until, assert_order, journal, journal_path, wait_for,
};
use crate::support::{Backend, Server, TestDb, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::json;

both_backends!(
    every_message_gets_its_statuses_in_order,
    settings_and_shards_api,
    callbacks_survive_a_failing_receiver
);

const FAST_LIFECYCLE: [(&str, &str); 2] =
    [("PREMISE_SANDBOX__DELIVERED_AFTER_MS", "20"), ("PREMISE_SANDBOX__READ_AFTER_MS", "20")];

/// Sends `per_recipient` texts to each recipient, one client per recipient (so each
/// recipient's acceptance order is defined), and returns recipient → accepted ids in order.
async fn burst(
    server: &Server,
    token: &str,
    recipients: usize,
    per_recipient: usize,
) -> HashMap<String, Vec<String>> {
    let mut clients = tokio::task::JoinSet::new();
    for r in 0..recipients {
        let (http, base, token) = (server.http.clone(), server.base.clone(), token.to_owned());
        clients.spawn(async move {
            let to = format!("1555000{r:04}");
            let mut ids = Vec::new();
            for n in 0..per_recipient {
                let resp = http
                    .post(format!("{base}/v1/messages"))
                    .bearer_auth(&token)
                    .json(&json!({"to": to, "type": "text", "text": {"body": format!("message {n} to {to}")}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::CREATED);
                let body: serde_json::Value = resp.json().await.unwrap();
                ids.push(body["messages"][0]["id"].as_str().unwrap().to_owned());
            }
            (to, ids)
        });
    }
    let mut accepted = HashMap::new();
    while let Some(done) = clients.join_next().await {
        let (to, ids) = done.unwrap();
        accepted.insert(to, ids);
    }
    accepted
}

async fn every_message_gets_its_statuses_in_order(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = premise_testkit::TempDir::new("premise-journal");
    let journal_file = journal_path(dir.path());
    let mut env = FAST_LIFECYCLE.to_vec();
    env.push(("PREMISE_SANDBOX__JOURNAL", journal_file.to_str().unwrap()));
    let server = Server::start_with(&db, &env).await;
    let token = server.admin_token().await;
    let receiver = Receiver::start().await;
    server.use_webhook(&token, &receiver.url()).await;
    server.patch_settings(&token, json!({"webhooks": {"secret": "shh-its-a-secret"}})).await;

    let accepted = burst(&server, &token, 50, 20).await;
    let ids: Vec<&String> = accepted.values().flatten().collect();
    assert_eq!(ids.len(), 1000);
    assert!(ids.iter().all(|id| id.len() == 27), "On-Premises-like ids");

    wait_for(Duration::from_secs(60), "3 statuses for each of 1000 messages", || {
        receiver.statuses().len() >= 3000
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // anything extra would show now
    let by_message = receiver.by_message();
    for id in &ids {
        assert_eq!(
            by_message.get(*id).cloned().unwrap_or_default(),
            ["sent", "delivered", "read"],
            "{id}"
        );
    }
    assert_eq!(receiver.statuses().len(), 3000, "no duplicates and no strangers");

    // The webhook bodies are On-Premises status callbacks, signed when a secret is set.
    let hit = &receiver.hits()[0];
    let status = &hit.body["statuses"][0];
    for field in ["id", "recipient_id", "status", "timestamp"] {
        assert!(status[field].is_string(), "{field} in {status}");
    }
    let expected = premise_engine_sign("shh-its-a-secret", &hit.raw);
    assert_eq!(hit.signature.as_deref(), Some(format!("sha256={expected}").as_str()));

    let sent = journal(&journal_file);
    assert_eq!(sent.len(), 1000, "each message reached the sandbox exactly once");
    assert_order(&sent, &accepted);
}

/// HMAC-SHA256 as the receiver would compute it to verify the header.
fn premise_engine_sign(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

async fn settings_and_shards_api(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let admin = server.admin_token().await;
    let user = server.user_token(&admin, "integration", "Integr4tion!").await;

    // Defaults, as On-Premises.
    let (status, body) = server.get("/v1/settings/application", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    let app = &body["settings"]["application"];
    assert_eq!(
        (app["callback_persist"].as_bool(), app["callback_backoff_delay_ms"].as_str()),
        (Some(true), Some("3000"))
    );
    assert_eq!(app["max_callback_backoff_delay_ms"], "900000");
    assert_eq!(app["webhooks"]["max_concurrent_requests"], 6);

    // PATCH changes only what is given, takes numbers as strings, keeps fields it has no use for.
    server
        .patch_settings(&admin, json!({"callback_backoff_delay_ms": "1500", "on_call_pager": "1234", "media": {"auto_download": ["image"]}, "db_garbagecollector_enable": true}))
        .await;
    server.patch_settings(&admin, json!({"webhooks": {"url": "https://example.com/hook", "max_concurrent_requests": "12"}})).await;
    let (_, body) = server.get("/v1/settings/application", Some(&admin)).await;
    let app = &body["settings"]["application"];
    assert_eq!(app["callback_backoff_delay_ms"], "1500");
    assert_eq!(app["on_call_pager"], "1234");
    assert_eq!(app["media"]["auto_download"], json!(["image"]));
    assert_eq!(app["db_garbagecollector_enable"], true);
    assert_eq!(app["webhooks"]["url"], "https://example.com/hook");
    assert_eq!(app["webhooks"]["max_concurrent_requests"], 12);

    for (patch, field) in [
        (json!({"callback_backoff_delay_ms": "soon"}), "callback_backoff_delay_ms"),
        (json!({"webhooks": {"url": "not a url"}}), "webhooks.url"),
        (json!({"webhooks": {"max_concurrent_requests": 5}}), "webhooks.max_concurrent_requests"),
        (json!({"sent_status": "maybe"}), "sent_status"),
    ] {
        let (status, body) =
            server.send_json(Method::PATCH, "/v1/settings/application", Some(&admin), patch).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_error(&body, 1009, field);
    }
    // Settings are for admins.
    let (status, body) = server.get("/v1/settings/application", Some(&user)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, 1005, "admin");

    // DELETE resets to the defaults.
    let resp = server
        .http
        .delete(server.url("/v1/settings/application"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, body) = server.get("/v1/settings/application", Some(&admin)).await;
    assert_eq!(body["settings"]["application"]["callback_backoff_delay_ms"], "3000");
    assert!(body["settings"]["application"].get("on_call_pager").is_none());

    // Shards: 1, 2, 4, 8, 16 or 32.
    let (status, body) = server.get("/v1/account/shards", Some(&admin)).await;
    assert_eq!((status, &body["account"]["shards"]), (StatusCode::OK, &json!(1)));
    let (status, body) = server
        .send_json(
            Method::POST,
            "/v1/account/shards",
            Some(&admin),
            json!({"cc": "1", "phone_number": "6315550000", "shards": "8", "pin": "123456"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, body) = server.get("/v1/account/shards", Some(&admin)).await;
    assert_eq!(body["account"]["shards"], 8);
    for (request, code, part) in [
        (json!({"cc": "1", "phone_number": "6315550000", "shards": 3}), 1009, "shards"),
        (json!({"cc": "1", "phone_number": "6315550000", "shards": 64}), 1009, "shards"),
        (json!({"cc": "1", "phone_number": "6315550000"}), 1008, "shards"),
        (json!({"phone_number": "6315550000", "shards": 2}), 1008, "cc"),
    ] {
        let (status, body) =
            server.send_json(Method::POST, "/v1/account/shards", Some(&admin), request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_error(&body, code, part);
    }

    // Messages: validation errors in the On-Premises shape; any authenticated user may send.
    let (status, _, body) = server.send_text(&user, "not-a-number", "hi").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1009, "to");
    let (status, _, body) = server.send_text(&user, "16315551234", &"x".repeat(4097)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1001, "text.body");
    let (status, id, _) = server.send_text(&user, "+1 631-555-1234", "hello").await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(id.is_some());
    let (status, body) = server
        .send_json(
            Method::POST,
            "/v1/messages",
            None,
            json!({"to": "16315551234", "text": {"body": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, 1005, "Invalid credentials.");
}

/// The receiver answers 500 for a while: callbacks wait and are retried on the configured
/// linear schedule, then all arrive, each once, in lifecycle order. A redirect is a failure.
async fn callbacks_survive_a_failing_receiver(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(&db, &FAST_LIFECYCLE).await;
    let token = server.admin_token().await;
    let receiver = Receiver::start().await;
    receiver.set_mode(Mode::Status(500));
    server.use_webhook(&token, &receiver.url()).await;
    server
        .patch_settings(
            &token,
            json!({"callback_backoff_delay_ms": 200, "max_callback_backoff_delay_ms": "600"}),
        )
        .await;

    let mut ids = Vec::new();
    for n in 0..10 {
        let (status, id, _) = server.send_text(&token, &format!("1666000{n:04}"), "hello").await;
        assert_eq!(status, StatusCode::CREATED);
        ids.push(id.unwrap());
    }
    // The attempts of one callback go on: their spacing (200 ms, 400 ms, then capped at 600
    // ms) is checked step by step on a driven clock, in the dispatcher's own tests.
    let attempts = || {
        receiver
            .hits()
            .into_iter()
            .filter(|h| {
                h.body["statuses"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["id"] == ids[0].as_str() && s["status"] == "sent")
            })
            .count()
    };
    wait_for(Duration::from_secs(20), "four attempts of one callback", || attempts() >= 4).await;

    // A redirect is not followed and counts as a failure.
    receiver.set_mode(Mode::Redirect(format!("{}/elsewhere", receiver.base)));
    wait_for(Duration::from_secs(10), "a redirect answered", || {
        receiver.hits().iter().any(|h| h.answered == 302)
    })
    .await;
    assert!(receiver.hits().iter().all(|h| h.path != "/elsewhere"), "the redirect was followed");
    assert!(receiver.statuses().is_empty());

    receiver.set_mode(Mode::Ok);
    wait_for(Duration::from_secs(20), "every callback after recovery", || {
        receiver.statuses().len() >= 30
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let by_message = receiver.by_message();
    for id in &ids {
        assert_eq!(by_message[id], ["sent", "delivered", "read"], "{id}");
    }
}

/// Transient upstream failures are retried until acknowledged; order per recipient holds.
#[tokio::test]
async fn transient_upstream_failures_are_retried_in_order() {
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = premise_testkit::TempDir::new("premise-journal");
    let journal_file = journal_path(dir.path());
    let env = [
        ("PREMISE_SANDBOX__TRANSIENT_FAILURE_RATE", "0.3"),
        ("PREMISE_SENDER__RETRY_INITIAL_MS", "5"),
        ("PREMISE_SENDER__RETRY_MAX_MS", "50"),
        ("PREMISE_SANDBOX__JOURNAL", journal_file.to_str().unwrap()),
    ];
    let server = Server::start_with(&db, &env).await;
    let token = server.admin_token().await;
    let accepted = burst(&server, &token, 10, 30).await;
    wait_for(Duration::from_secs(60), "300 acknowledged sends", || {
        journal(&journal_file).len() >= 300
    })
    .await;
    let sent = journal(&journal_file);
    assert_eq!(sent.len(), 300, "once each");
    assert_order(&sent, &accepted);
}

/// With a tiny queue bound, excess requests get 503/1016, and every 201 is delivered.
#[tokio::test]
async fn backpressure_refuses_rather_than_loses() {
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = premise_testkit::TempDir::new("premise-journal");
    let journal_file = journal_path(dir.path());
    let env = [
        ("PREMISE_QUEUE__MAX_QUEUED", "5"),
        ("PREMISE_SANDBOX__ACK_LATENCY_MS", "1500"),
        ("PREMISE_SANDBOX__JOURNAL", journal_file.to_str().unwrap()),
    ];
    let server = Server::start_with(&db, &env).await;
    let token = server.admin_token().await;
    let mut accepted = Vec::new();
    let mut refused = 0;
    for n in 0..20 {
        let (status, id, body) = server.send_text(&token, &format!("1777000{n:04}"), "hello").await;
        match status {
            StatusCode::CREATED => accepted.push(id.unwrap()),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_error(&body, 1016, "queued");
                assert_eq!(body["errors"][0]["title"], "System overloaded");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(accepted.len(), 5, "the bound");
    assert_eq!(refused, 15);
    wait_for(Duration::from_secs(30), "every accepted message delivered", || {
        journal(&journal_file).len() >= 5
    })
    .await;
    let sent: Vec<String> = journal(&journal_file).into_iter().map(|s| s.id).collect();
    for id in &accepted {
        assert!(sent.contains(id), "{id} was accepted but never sent");
    }
    // Once they are out of the queue (and the backlog count refreshed), new ones are taken.
    let again = || server.send_text(&token, "17770009999", "again");
    let (status, _, body) =
        ask_until(Duration::from_secs(10), "a new message taken", again, |a| a.0 != 503).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A callback backlog past its cap refuses new messages with 1016, as On-Premises did.
#[tokio::test]
async fn a_full_callback_backlog_refuses_new_messages() {
    let db = TestDb::new(Backend::Sqlite).await;
    let env = [("PREMISE_QUEUE__MAX_CALLBACK_BACKLOG", "4"), FAST_LIFECYCLE[0], FAST_LIFECYCLE[1]];
    let server = Server::start_with(&db, &env).await;
    let token = server.admin_token().await;
    // No webhook URL: callbacks wait in the store.
    for n in 0..2 {
        assert_eq!(
            server.send_text(&token, &format!("1888000{n:04}"), "hi").await.0,
            StatusCode::CREATED
        );
    }
    // Once the backlog count sees them, the next message is one too many.
    let one_more = || server.send_text(&token, "18880009999", "one too many");
    let (status, _, body) =
        ask_until(Duration::from_secs(10), "the full backlog", one_more, |a| a.0 != 201).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_error(&body, 1016, "callbacks");
    // Setting the webhook drains the backlog, and messages are taken again.
    let receiver = Receiver::start().await;
    server.use_webhook(&token, &receiver.url()).await;
    wait_for(Duration::from_secs(10), "the backlog delivered", || receiver.statuses().len() >= 4)
        .await;
    let fits = || server.send_text(&token, "18880009999", "now it fits");
    let (status, _, _) =
        ask_until(Duration::from_secs(10), "room again", fits, |a| a.0 != 503).await;
    assert_eq!(status, StatusCode::CREATED);
}

/// A permanent upstream failure ends the message `failed` with On-Premises `errors[]`, and the
/// recipient's next message goes on.
#[tokio::test]
async fn permanent_failures_end_in_a_failed_status() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start_with(&db, &[("PREMISE_SANDBOX__PERMANENT_FAILURE_RATE", "1")]).await;
    let token = server.admin_token().await;
    let receiver = Receiver::start().await;
    server.use_webhook(&token, &receiver.url()).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let (status, id, _) = server.send_text(&token, "16315550042", &format!("#{n}")).await;
        assert_eq!(status, StatusCode::CREATED);
        ids.push(id.unwrap());
    }
    wait_for(Duration::from_secs(20), "3 failed statuses", || receiver.statuses().len() >= 3).await;
    let failed: Vec<_> = receiver
        .hits()
        .iter()
        .flat_map(|h| h.body["statuses"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(
        failed.iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>(),
        ids,
        "in order, each once"
    );
    for status in &failed {
        assert_eq!(status["status"], "failed");
        assert_eq!(status["recipient_id"], "16315550042");
        assert_eq!(status["errors"][0]["code"], 1026);
        assert_eq!(status["errors"][0]["title"], "Receiver incapable");
    }
}

/// No more than `webhooks.max_concurrent_requests` webhook POSTs at once, across shards.
#[tokio::test]
async fn webhook_concurrency_is_capped() {
    let db = TestDb::new(Backend::Sqlite).await;
    let env = [
        ("PREMISE_CALLBACKS__MAX_STATUSES_PER_REQUEST", "1"),
        ("PREMISE_SANDBOX__DELIVERED_AFTER_MS", "10000"),
        ("PREMISE_SANDBOX__READ_AFTER_MS", "10000"),
    ];
    let server = Server::start_with(&db, &env).await;
    let token = server.admin_token().await;
    let (status, _) = server
        .send_json(
            Method::POST,
            "/v1/account/shards",
            Some(&token),
            json!({"cc": "1", "phone_number": "5550000", "shards": 8}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let receiver = Receiver::start().await;
    receiver.set_mode(Mode::Slow(Duration::from_millis(150)));
    server.use_webhook(&token, &receiver.url()).await;
    for n in 0..60 {
        assert_eq!(
            server.send_text(&token, &format!("1444000{n:04}"), "hi").await.0,
            StatusCode::CREATED
        );
    }
    wait_for(Duration::from_secs(30), "60 sent statuses", || receiver.statuses().len() >= 60).await;
    assert!(receiver.max_concurrency() <= 6, "{} at once", receiver.max_concurrency());
    assert!(receiver.max_concurrency() >= 2, "deliveries do run in parallel");
}

/// With `callback_persist` off, a callback the receiver refuses is dropped, not retried.
#[tokio::test]
async fn without_callback_persist_refused_callbacks_are_dropped() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start_with(&db, &FAST_LIFECYCLE).await;
    let token = server.admin_token().await;
    let receiver = Receiver::start().await;
    receiver.set_mode(Mode::Status(503));
    server.use_webhook(&token, &receiver.url()).await;
    server
        .patch_settings(
            &token,
            json!({"callback_persist": false, "callback_backoff_delay_ms": 100}),
        )
        .await;
    assert_eq!(server.send_text(&token, "16315550077", "hi").await.0, StatusCode::CREATED);
    wait_for(Duration::from_secs(10), "three refused callbacks", || receiver.hits().len() >= 3)
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let refused = receiver.hits().len();
    assert_eq!(refused, 3, "each of sent, delivered, read tried once");
    receiver.set_mode(Mode::Ok);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.hits().len(), refused, "nothing retried");
}
