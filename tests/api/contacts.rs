//! `POST /v1/contacts`: normalisation, per-number answers, request errors naming the field,
//! and the 7-day cache that `force_check` bypasses.

use crate::support;
use crate::support::{Backend, Server, TestDb, assert_error, assert_meta};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(numbers_are_normalised, malformed_requests_name_the_field, cache_and_force_check);

async fn contacts(server: &Server, token: &str, body: Value) -> (StatusCode, Value) {
    server.send_json(Method::POST, "/v1/contacts", Some(token), body).await
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

async fn numbers_are_normalised(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;

    let inputs = [
        "16315551000",
        "+1 631 555 1001",
        "+1 (631) 555-1002",
        "1.631.555.1003",
        "+1 631 555 1001", // twice: answered twice
        "abc",
        "",
        "12345",
        "06 12 34 56 78",
        "+1 631 555 1000 12345",
        "1+6315551000",
    ];
    for blocking in ["wait", "no_wait"] {
        let (status, body) =
            contacts(&server, &token, json!({"blocking": blocking, "contacts": inputs})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_meta(&body);
        assert_eq!(
            body["contacts"],
            json!([
                {"input": "16315551000", "status": "valid", "wa_id": "16315551000"},
                {"input": "+1 631 555 1001", "status": "valid", "wa_id": "16315551001"},
                {"input": "+1 (631) 555-1002", "status": "valid", "wa_id": "16315551002"},
                {"input": "1.631.555.1003", "status": "valid", "wa_id": "16315551003"},
                {"input": "+1 631 555 1001", "status": "valid", "wa_id": "16315551001"},
                {"input": "abc", "status": "invalid"},
                {"input": "", "status": "invalid"},
                {"input": "12345", "status": "invalid"},
                {"input": "06 12 34 56 78", "status": "invalid"},
                {"input": "+1 631 555 1000 12345", "status": "invalid"},
                {"input": "1+6315551000", "status": "invalid"},
            ]),
            "blocking {blocking}"
        );
    }
    // `blocking` may be left out (`no_wait`).
    let (status, body) = contacts(&server, &token, json!({"contacts": ["+44 20 7946 0958"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["contacts"][0]["wa_id"], "442079460958");
}

async fn malformed_requests_name_the_field(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;

    for (body, code, says) in [
        (json!({}), 1008, "Missing mandatory parameter 'contacts'"),
        (json!({"contacts": null}), 1008, "'contacts'"),
        (json!({"contacts": "16315551000"}), 1009, "contacts: expected an array"),
        (json!({"contacts": []}), 1009, "contacts: must list at least one"),
        (
            json!({"contacts": ["16315551000", 16315551001_u64]}),
            1009,
            "contacts[1]: expected a phone number as a string, got a number",
        ),
        (
            json!({"contacts": ["1"], "blocking": "later"}),
            1009,
            "blocking: 'later' is not one of wait, no_wait",
        ),
        (json!({"contacts": ["1"], "blocking": true}), 1009, "blocking: expected a string"),
        (
            json!({"contacts": ["1"], "force_check": "yes"}),
            1009,
            "force_check: expected true or false",
        ),
        (json!({"contacts": ["1"], "extra": 1}), 1010, "'extra'"),
        (json!([]), 1025, "JSON object"),
    ] {
        let (status, answer) = contacts(&server, &token, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        assert_error(&answer, code, says);
    }
    let (status, answer) = support::send(
        server.http.post(server.url("/v1/contacts")).bearer_auth(&token).body("{\"contacts\": ["),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&answer, 1025, "not valid JSON");
    let (status, answer) = server
        .send_json(Method::POST, "/v1/contacts", None, json!({"contacts": ["16315551000"]}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&answer, 1005, "Invalid credentials");
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM contact_checks").await,
        0,
        "nothing refused is cached"
    );
}

/// The cache is observable because a check's result is reused without looking again: a result
/// recorded in the store (here, arranged directly: "not on WhatsApp") is what the API answers
/// until it is 7 days old or `force_check` replaces it.
async fn cache_and_force_check(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;

    // Checks are recorded, once per distinct number.
    let (status, body) = contacts(
        &server,
        &token,
        json!({"contacts": ["+1 631 555 2000", "16315552000", "16315552001", "nope"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM contact_checks").await, 2);

    let cached_invalid = "15550001111";
    let expired_invalid = "15550002222";
    db.execute(&format!(
        "INSERT INTO contact_checks (number, wa_id, checked_at) VALUES
         ('{cached_invalid}', NULL, {}), ('{expired_invalid}', NULL, {})",
        now() - 6 * 24 * 3600,
        now() - 7 * 24 * 3600 - 60
    ))
    .await;
    let ask = |number: &str, force: bool| json!({"blocking": "wait", "force_check": force, "contacts": [format!("+{number}")]});

    // A hit: six days old, still used.
    let (_, body) = contacts(&server, &token, ask(cached_invalid, false)).await;
    assert_eq!(body["contacts"][0], json!({"input": "+15550001111", "status": "invalid"}));
    // Expired: looked up again, and the fresh result is recorded.
    let (_, body) = contacts(&server, &token, ask(expired_invalid, false)).await;
    assert_eq!(body["contacts"][0]["status"], "valid", "{body}");
    let checked_at = db
        .scalar(&format!(
            "SELECT checked_at FROM contact_checks WHERE number = '{expired_invalid}'"
        ))
        .await;
    assert!(checked_at >= now() - 60, "the new check replaced the expired one");

    // force_check looks again despite the cache, and refreshes it for everyone after.
    let (_, body) = contacts(&server, &token, ask(cached_invalid, true)).await;
    assert_eq!(
        body["contacts"][0],
        json!({"input": "+15550001111", "status": "valid", "wa_id": cached_invalid})
    );
    let (_, body) = contacts(&server, &token, ask(cached_invalid, false)).await;
    assert_eq!(body["contacts"][0]["status"], "valid", "{body}");

    // The cache is in the store: another replica answers from it.
    db.execute(&format!(
        "UPDATE contact_checks SET wa_id = NULL WHERE number = '{cached_invalid}'"
    ))
    .await;
    let other = Server::start(&db).await;
    let (_, body) = contacts(&other, &token, ask(cached_invalid, false)).await;
    assert_eq!(body["contacts"][0]["status"], "invalid", "{body}");
}
