//! Retention (`[retention]`, `PUT /v1/services/message/gc`): finished messages, customers'
//! messages, media and expired records are deleted; a message whose webhook is not delivered
//! yet stays until it is. On SQLite and Postgres, with the real binary.

use std::time::Duration;

use crate::support::pipeline::{Mode, Receiver, ask_until, wait_for};
use crate::support::{Backend, Server, TestDb};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    what_is_finished_goes_and_what_is_owed_stays,
    the_schedule_purges_without_being_asked
);

const WAIT: Duration = Duration::from_secs(30);

/// Everything kept one second; passes only when asked.
const ONE_SECOND: [(&str, &str); 4] = [
    ("PREMISE_RETENTION__MESSAGES_SECS", "1"),
    ("PREMISE_RETENTION__INBOUND_SECS", "1"),
    ("PREMISE_RETENTION__MEDIA_SECS", "1"),
    ("PREMISE_RETENTION__INTERVAL_MS", "3600000"),
];

async fn gc(server: &Server, token: &str) -> (StatusCode, Value) {
    server.send_json(Method::PUT, "/v1/services/message/gc", Some(token), json!({})).await
}

async fn what_is_finished_goes_and_what_is_owed_stays(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(&db, &ONE_SECOND).await;
    let token = server.admin_token().await;
    let receiver = Receiver::start().await;
    // The integration is down: every webhook is refused for now.
    receiver.set_mode(Mode::Status(500));
    server.use_webhook(&token, &receiver.url()).await;
    let mut ids = Vec::new();
    for n in 0..20 {
        let (status, id, body) = server.send_text(&token, &format!("1631555{n:04}"), "hi").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(id.unwrap());
    }
    let (status, _) = server
        .send_json(
            Method::POST,
            "/v1/sandbox/inbound",
            Some(&token),
            json!({"from": "16505551234", "type": "text", "text": {"body": "hello"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let media = server
        .http
        .post(server.url("/v1/media"))
        .bearer_auth(&token)
        .header("content-type", "image/png")
        .body(b"\x89PNG".to_vec())
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["media"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Every message read, none of its webhooks delivered: past the second, nothing goes.
    ask_until(
        WAIT,
        "every message read",
        || db.scalar("SELECT COUNT(*) FROM messages WHERE status = 3"),
        |read| *read == 20,
    )
    .await;
    wait_for(WAIT, "a refused webhook", || !receiver.hits().is_empty()).await;
    let before = db.scalar("SELECT COUNT(*) FROM inbound_messages").await;
    assert_eq!(before, 1);
    let past = |at: i64| async move {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        i64::try_from(now.as_millis()).unwrap() > at + 1_500
    };
    let last_change = db.scalar("SELECT MAX(updated_at) FROM messages").await;
    ask_until(WAIT, "the retention time to pass", || past(last_change), |p| *p).await;
    assert_eq!(gc(&server, &token).await.0, StatusCode::OK);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM messages").await, 20, "owed webhooks: kept");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inbound_messages").await, 1, "its webhook too");
    let (status, _) = download(&server, &token, &media).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "media is not owed anything: gone");

    // The integration is back: once every webhook is delivered, everything goes.
    receiver.set_mode(Mode::Ok);
    wait_for(WAIT, "every read delivered", || {
        let delivered = receiver.by_message();
        ids.iter().all(|id| delivered.get(id).is_some_and(|s| s.contains(&"read".to_owned())))
    })
    .await;
    ask_until(
        WAIT,
        "everything deleted",
        || async {
            assert_eq!(gc(&server, &token).await.0, StatusCode::OK);
            db.scalar("SELECT COUNT(*) FROM messages").await
                + db.scalar("SELECT COUNT(*) FROM inbound_messages").await
        },
        |left| *left == 0,
    )
    .await;
    // Each message's webhooks arrived once each, in order, before it went.
    for id in &ids {
        assert_eq!(receiver.by_message()[id], ["sent", "delivered", "read"], "{id}");
    }
    // A message still works after: retention removed rows, not the queue.
    let (status, id, _) = server.send_text(&token, "16315559999", "after").await;
    assert_eq!(status, StatusCode::CREATED);
    let id = id.unwrap();
    wait_for(WAIT, "the new message read", || {
        receiver.by_message().get(&id).is_some_and(|s| s.contains(&"read".to_owned()))
    })
    .await;

    // Only an admin may ask.
    let user = server.user_token(&token, "operator", "Op3rator!pass").await;
    let (status, _) = gc(&server, &user).await;
    assert!(matches!(status.as_u16(), 401 | 403), "{status}");
}

async fn download(server: &Server, token: &str, id: &str) -> (StatusCode, Vec<u8>) {
    let response =
        server.http.get(server.url(&format!("/v1/media/{id}"))).bearer_auth(token).send().await;
    let response = response.unwrap();
    (response.status(), response.bytes().await.unwrap().to_vec())
}

async fn the_schedule_purges_without_being_asked(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(
        &db,
        &[
            ("PREMISE_RETENTION__MESSAGES_SECS", "1"),
            ("PREMISE_RETENTION__INTERVAL_MS", "200"),
            ("PREMISE_SERVER__IDEMPOTENCY_TTL_SECS", "1"),
        ],
    )
    .await;
    let token = server.admin_token().await;
    let receiver = Receiver::start().await;
    server.use_webhook(&token, &receiver.url()).await;
    for n in 0..10 {
        let (status, _, body) = server.send_text(&token, &format!("1631555{n:04}"), "hi").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let keyed = server
        .http
        .post(server.url("/v1/messages"))
        .bearer_auth(&token)
        .header("idempotency-key", "once")
        .json(&json!({"to": "16315550100", "type": "text", "text": {"body": "keyed"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), StatusCode::CREATED);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM idempotency_keys").await, 1);
    // Nothing else is written from now on: the worker alone deletes.
    ask_until(
        WAIT,
        "messages, and the expired key, deleted by the schedule",
        || async {
            db.scalar("SELECT COUNT(*) FROM messages").await
                + db.scalar("SELECT COUNT(*) FROM idempotency_keys").await
        },
        |left| *left == 0,
    )
    .await;
    assert_eq!(receiver.statuses().iter().filter(|(_, s)| s == "read").count(), 11);
    // The counter is added once each kind's deletes are committed: a moment after the rows go.
    ask_until(
        WAIT,
        "the deletes counted in /metrics",
        || async {
            let request = server.http.get(server.url("/metrics")).bearer_auth(&token);
            request.send().await.unwrap().text().await.unwrap()
        },
        |metrics| metrics.contains("premise_retention_deleted_total{kind=\"message\"} 11"),
    )
    .await;
}
