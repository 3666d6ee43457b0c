//! `Idempotency-Key` on `POST /v1/messages`: a repeat gets the first answer and sends nothing,
//! concurrent repeats send once, another body under the same key is refused, keys expire.

use std::time::Duration;

use crate::support;
use crate::support::{Backend, Server, TestDb, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(repeat_gets_the_first_answer, concurrent_repeats_send_once, keys_expire);

/// kill -9 of the replica that committed a message before its client heard the answer: the
/// client's retry with the same key, on another replica, gets the id it never received, at
/// once, and nothing is sent twice. Every write of a key is slowed (a trigger that sleeps), so
/// the first replica dies in the middle of whatever it does around its commit: with the key
/// reserved, the message committed and the answer stored one after the other, the retry
/// waited for the dead holder's lock (a minute) and then sent the message again.
#[tokio::test]
async fn a_retry_after_the_committing_replica_died_gets_its_id() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut first = Server::start(&db).await;
    let other = Server::start(&db).await;
    let token = first.admin_token().await;
    db.execute(
        "CREATE FUNCTION slow_key() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN PERFORM pg_sleep(2); RETURN NEW; END $$",
    )
    .await;
    db.execute(
        "CREATE TRIGGER slow_key BEFORE INSERT OR UPDATE ON idempotency_keys
             FOR EACH ROW EXECUTE FUNCTION slow_key()",
    )
    .await;
    let hello = text("16315551000", "sent once");

    let lost = {
        let req = first
            .http
            .post(first.url("/v1/messages"))
            .bearer_auth(&token)
            .header("idempotency-key", "order-77")
            .json(&hello);
        tokio::spawn(req.send())
    };
    support::pipeline::ask_until(
        Duration::from_secs(20),
        "the message committed",
        || messages(&db),
        |n| *n == 1,
    )
    .await;
    first.kill();
    // Whether the client heard the answer before the kill depends on the moment; the retry
    // must not.
    drop(lost);
    db.execute("DROP TRIGGER slow_key ON idempotency_keys").await;

    let retry = other
        .http
        .post(other.url("/v1/messages"))
        .bearer_auth(&token)
        .header("idempotency-key", "order-77")
        .json(&hello)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("the retry is answered at once");
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert!(retry.headers().contains_key("idempotent-replayed"));
    let answer: Value = retry.json().await.unwrap();
    let stored = db.strings("SELECT id FROM messages").await;
    assert_eq!(answer["messages"][0]["id"], json!(stored[0]), "the committed message's id");
    assert_eq!(messages(&db).await, 1, "sent once");
}

async fn post(
    server: &Server,
    token: &str,
    key: Option<&str>,
    body: &Value,
) -> (StatusCode, Value, bool) {
    let mut req = server.http.post(server.url("/v1/messages")).bearer_auth(token).json(body);
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    let resp = req.send().await.unwrap();
    let replayed = resp.headers().get("idempotent-replayed").is_some();
    let status = resp.status();
    (status, resp.json().await.unwrap(), replayed)
}

fn text(to: &str, body: &str) -> Value {
    json!({"to": to, "type": "text", "text": {"body": body}})
}

async fn messages(db: &TestDb) -> i64 {
    db.scalar("SELECT COUNT(*) FROM messages").await
}

async fn repeat_gets_the_first_answer(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;
    let hello = text("16315551000", "hello");

    let (status, first, replayed) = post(&server, &token, Some("order-1"), &hello).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert!(!replayed);
    let (status, again, replayed) = post(&server, &token, Some("order-1"), &hello).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again, first, "same body, same message id");
    assert!(replayed, "marked as a replay");
    assert_eq!(messages(&db).await, 1, "sent once");

    // The key is in the store: another replica answers the same.
    let other = Server::start(&db).await;
    let (_, from_other, _) = post(&other, &token, Some("order-1"), &hello).await;
    assert_eq!(from_other, first);

    // Same key, another body: refused, nothing sent.
    let (status, refused, _) =
        post(&server, &token, Some("order-1"), &text("16315551000", "hello!")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error(
        &refused,
        1004,
        "Idempotency-Key 'order-1' was already used with a different request body",
    );
    assert_eq!(messages(&db).await, 1);

    // Other keys, and no key, send as usual.
    let (_, second, _) = post(&server, &token, Some("order-2"), &hello).await;
    assert_ne!(second["messages"][0]["id"], first["messages"][0]["id"]);
    let (status, _, replayed) = post(&server, &token, None, &hello).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false));
    assert_eq!(messages(&db).await, 3);

    // A refused request's answer is kept too; a 401 is not (the retry with a token must work).
    let bad = json!({"to": "16315551000", "type": "text"});
    let (status, first_bad, _) = post(&server, &token, Some("bad-1"), &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, again_bad, replayed) = post(&server, &token, Some("bad-1"), &bad).await;
    assert_eq!((status, &again_bad, replayed), (StatusCode::BAD_REQUEST, &first_bad, true));
    let (status, _, _) = post(&server, "not-a-token", Some("auth-1"), &hello).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, replayed) = post(&server, &token, Some("auth-1"), &hello).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false));

    // A malformed key is refused by name.
    let (status, body, _) = post(&server, &token, Some(&"k".repeat(256)), &hello).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1009, "Idempotency-Key: must be 1 to 255 visible ASCII characters");
    assert_eq!(messages(&db).await, 4);
}

async fn concurrent_repeats_send_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;
    let hello = text("16315551000", "at once");

    let answers = all_at_once(&server, &token, &hello, 16).await;
    let first = &answers[0];
    assert_eq!(first.0, StatusCode::CREATED, "{}", first.1);
    for (status, body) in &answers {
        assert_eq!((status, body), (&first.0, &first.1), "every duplicate gets the first answer");
    }
    assert_eq!(messages(&db).await, 1, "sent once");
}

/// `n` identical requests with one key, all in flight at once.
async fn all_at_once(
    server: &Server,
    token: &str,
    body: &Value,
    n: usize,
) -> Vec<(StatusCode, Value)> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (http, url, token, body) =
            (server.http.clone(), server.url("/v1/messages"), token.to_owned(), body.clone());
        tasks.push(tokio::spawn(async move {
            let req =
                http.post(url).bearer_auth(token).header("idempotency-key", "race").json(&body);
            support::send(req).await
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

async fn keys_expire(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(&db, &[("PREMISE_SERVER__IDEMPOTENCY_TTL_SECS", "1")]).await;
    let token = server.admin_token().await;
    let hello = text("16315551000", "hello");

    let (_, first, _) = post(&server, &token, Some("short"), &hello).await;
    let (_, again, replayed) = post(&server, &token, Some("short"), &hello).await;
    assert!(replayed && again == first, "within the time: replayed");
    // Keys live whole seconds: past the next second boundary but one, the key is gone.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (status, later, replayed) = post(&server, &token, Some("short"), &hello).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false));
    assert_ne!(later["messages"][0]["id"], first["messages"][0]["id"], "sent anew");
    assert_eq!(messages(&db).await, 2);
}
