//! The On-Premises envelope on every answer, health and monitoring auth, on both backends.

use crate::support::pipeline::wait_for;
use crate::support::{Backend, Server, TestDb, assert_error, assert_meta, send};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    every_error_has_the_onprem_shape,
    health_and_monitoring_auth,
    requests_carry_an_id,
    errors_quote_long_input_by_a_short_prefix,
);

/// A refusal names the value it refused, but a 10,000-digit number is not sent back whole.
async fn errors_quote_long_input_by_a_short_prefix(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let admin = server.admin_token().await;
    let long = "1".repeat(10_000);
    let cases = [
        json!({"to": long, "type": "text", "text": {"body": "hi"}}),
        json!({"to": "16315551234", "type": long, "text": {"body": "hi"}}),
        json!({"to": "16315551234", "type": "text", "text": {"body": "hi"}, long.clone(): 1}),
    ];
    for case in cases {
        let (status, body) =
            server.send_json(Method::POST, "/v1/messages", Some(&admin), case).await;
        assert!(status.is_client_error() || status.as_u16() == 501, "{status}");
        let details = body["errors"][0]["details"].as_str().unwrap();
        assert!(details.len() < 200, "{} bytes of details: {details}", details.len());
        assert!(details.contains(&"1".repeat(40)), "names the value by a prefix: {details}");
        assert!(details.contains("10000 characters"), "{details}");
    }
    let (status, body) = server.get(&format!("/v1/media/{long}"), Some(&admin)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.to_string().len() < 400, "{body}");
}

async fn every_error_has_the_onprem_shape(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(&db, &[("PREMISE_SERVER__BODY_LIMIT_BYTES", "2048")]).await;
    let admin = server.admin_token().await;

    let (status, body) = server.get("/v1/no-such-thing", Some(&admin)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, 1006, "/v1/no-such-thing");

    let (status, body) = send(server.http.delete(server.url("/v1/users/login"))).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&body, 1025, "DELETE");

    let post_raw =
        |raw: &'static str| server.http.post(server.url("/v1/users")).bearer_auth(&admin).body(raw);
    let (status, body) = send(post_raw(r#"{"username": "dave", "password": "#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1025, "not valid JSON");
    let (status, body) = send(post_raw(r#"{"username": 5, "password": "#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "malformed, even past a wrongly typed field");
    assert_error(&body, 1025, "not valid JSON");
    let (status, body) = send(post_raw(r#"["dave", "Dave123!x"]"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1025, "JSON object");
    let (status, body) = send(post_raw(r#"{"username": "dave", "password": 12345678}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1009, "password: invalid type: integer");
    let (status, body) = send(post_raw(r#"{"username": "dave"} trailing"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1025, "trailing");
    let (status, body) = send(post_raw("")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1025, "empty");

    let big = json!({"username": "dave", "password": "x".repeat(4096)});
    let (status, body) = server.send_json(Method::POST, "/v1/users", Some(&admin), big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, 1025, "larger");

    // Trailing slashes are tolerated, as some of Meta's own Postman requests have them.
    let (status, body) = server.get("/v1/users/admin/", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_meta(&body);
}

async fn health_and_monitoring_auth(backend: Backend) {
    let db = TestDb::new(backend).await;
    let key = "monitoring-key-0123";
    let server = Server::start_with(&db, &[("PREMISE_API_KEY", key)]).await;

    let health = |auth: Option<String>| {
        let mut req = server.http.get(server.url("/v1/health"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        send(req)
    };
    let (status, body) = health(Some(format!("Apikey {key}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["health"], json!({"gateway_status": "connected"}));
    assert_meta(&body);
    for wrong in [None, Some("Apikey wrong-key-0123".to_owned()), Some(format!("Apikey {key}x"))] {
        let (status, body) = health(wrong.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong:?}");
        assert_error(&body, 1005, "Invalid credentials.");
    }
    let token = server.admin_token().await;
    let (status, _) = health(Some(format!("Bearer {token}"))).await;
    assert_eq!(status, StatusCode::OK);

    // The key is for monitoring only.
    let resp = server
        .http
        .get(server.url("/v1/users/admin"))
        .header("authorization", format!("Apikey {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Load-balancer probes need no credentials.
    let (status, body) = server.get("/healthz", None).await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("alive")));
    let (status, body) = server.get("/readyz", None).await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("ready")));
}

async fn requests_carry_an_id(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let resp = server.http.get(server.url("/healthz")).send().await.unwrap();
    let id = resp.headers().get("x-request-id").expect("a generated request id").to_str().unwrap();
    assert_eq!(id.len(), 36, "{id}");
    let resp = server
        .http
        .get(server.url("/healthz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-me-42", "a given id is kept");
    let _: Value = resp.json().await.unwrap();
}

/// A failure inside the server is answered 500/1014 with an opaque text; the cause is logged.
#[tokio::test]
async fn internal_errors_are_opaque_and_logged() {
    let db = TestDb::new(Backend::Postgres).await;
    let server = Server::start(&db).await;
    server.admin_token().await;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url).await.unwrap();
    sqlx::query("DROP TABLE login_failures").execute(&mut conn).await.unwrap();

    let (status, body) = server.login("admin", "wrong", None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_error(&body, 1014, "internal error");
    assert!(!body.to_string().contains("login_failures"), "no internals leak: {body}");
    wait_for(std::time::Duration::from_secs(5), "the cause logged", || {
        server.logs().contains("login_failures")
    })
    .await;
}
