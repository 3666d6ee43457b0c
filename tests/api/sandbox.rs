//! The sandbox as integrators test against it: test numbers with fixed outcomes, the 24-hour
//! customer-service window judged by a clock the test moves, and injected inbound messages
//! arriving as On-Premises inbound webhooks. Through the real binary and a real receiver.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::support;
use crate::support::pipeline::{Receiver, ask_until, wait_for};
use crate::support::{Backend, Server, TestDb, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(inbound_messages_arrive_as_onprem_webhooks, customers_by_business_scoped_id);

const FAST: [(&str, &str); 4] = [
    ("PREMISE_SANDBOX__DELIVERED_AFTER_MS", "20"),
    ("PREMISE_SANDBOX__READ_AFTER_MS", "20"),
    ("PREMISE_SENDER__RETRY_INITIAL_MS", "100"),
    ("PREMISE_SANDBOX__CHECK_TEMPLATES", "true"),
];

/// A normal number (not in the test-number table) whose customer never wrote.
const CUSTOMER: &str = "16505550107";

/// Every status entry received, per message: (status, the whole entry).
fn statuses(receiver: &Receiver) -> HashMap<String, Vec<(String, Value)>> {
    let mut map: HashMap<String, Vec<(String, Value)>> = HashMap::new();
    for hit in receiver.hits().iter().filter(|h| (200..300).contains(&h.answered)) {
        for s in hit.body["statuses"].as_array().cloned().unwrap_or_default() {
            let id = s["id"].as_str().unwrap_or("").to_owned();
            map.entry(id).or_default().push((s["status"].as_str().unwrap_or("").to_owned(), s));
        }
    }
    map
}

fn names(entries: Option<&Vec<(String, Value)>>) -> Vec<String> {
    entries.map(|e| e.iter().map(|(s, _)| s.clone()).collect()).unwrap_or_default()
}

async fn send_ok(server: &Server, token: &str, to: &str) -> String {
    let (status, id, body) = server.send_text(token, to, "hello").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    id.unwrap()
}

async fn send_template(server: &Server, token: &str, to: &str) -> String {
    let (status, body) = server
        .send_json(
            Method::POST,
            "/v1/messages",
            Some(token),
            json!({"to": to, "type": "template", "template": {
                "namespace": "premise_sandbox", "name": "hello_world",
                "language": {"policy": "deterministic", "code": "en_US"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["messages"][0]["id"].as_str().unwrap().to_owned()
}

/// Each test number's documented outcome, end to end through the status webhooks. The
/// lifecycle is off, so normal numbers stop at `sent` while the always-read number still goes on.
#[tokio::test]
async fn test_numbers_have_their_documented_outcomes() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut env = FAST.to_vec();
    env.push(("PREMISE_SANDBOX__LIFECYCLE", "false"));
    env.push(("RUST_LOG", "info,premise_engine=debug"));
    let server = Server::start_with(&db, &env).await;
    let token = server.admin_token().await;
    let receiver = Receiver::start().await;
    server.use_webhook(&token, &receiver.url()).await;

    // /v1/contacts knows the invalid test number; any other well-formed number is valid.
    let (status, body) = server
        .send_json(
            Method::POST,
            "/v1/contacts",
            Some(&token),
            json!({"blocking": "wait", "contacts": ["+1 650-555-0106", "+1 650 555 0100"], "force_check": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["contacts"][0]["status"], "invalid", "{body}");
    assert_eq!(body["contacts"][1]["status"], "valid", "{body}");
    assert_eq!(body["contacts"][1]["wa_id"], "16505550100", "{body}");

    let started = Instant::now();
    let mut ids = HashMap::new();
    for to in [
        "16505550100",
        "16505550101",
        "16505550102",
        "16505550103",
        "16505550104",
        "16505550105",
        "16505550106",
        "16505550112",
        "16505550121",
        CUSTOMER,
    ] {
        ids.insert(to, send_ok(&server, &token, to).await);
    }
    let expected: [(&str, &[&str], Option<u64>); 10] = [
        ("16505550100", &["sent", "delivered", "read"], None),
        ("16505550101", &["sent", "delivered"], None),
        ("16505550102", &["sent"], None),
        ("16505550103", &["failed"], Some(1026)),
        ("16505550104", &["failed"], Some(470)),
        ("16505550105", &["failed"], Some(471)),
        ("16505550106", &["failed"], Some(1013)),
        ("16505550112", &["sent"], None),
        ("16505550121", &["sent"], None),
        (CUSTOMER, &["sent"], None),
    ];
    wait_for(Duration::from_secs(20), "each test number's statuses", || {
        let got = statuses(&receiver);
        expected.iter().all(|(to, want, _)| names(got.get(&ids[to])).len() >= want.len())
    })
    .await;
    // Time for a status that should not come to show up.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let got = statuses(&receiver);
    for (to, want, code) in expected {
        let entries = got.get(&ids[to]);
        assert_eq!(names(entries), want, "{to}");
        if let Some(code) = code {
            let failed = &entries.unwrap()[0].1;
            assert_eq!(failed["errors"][0]["code"], code, "{to}: {failed}");
            assert!(failed["errors"][0]["title"].as_str().is_some_and(|t| !t.is_empty()));
        }
    }
    // The slow number was acknowledged after about a second; the transient one retried twice.
    let slow_sent = receiver
        .hits()
        .iter()
        .find(|h| h.body["statuses"][0]["id"] == ids["16505550121"].as_str())
        .map(|h| h.at)
        .unwrap();
    assert!(slow_sent - started >= Duration::from_secs(1), "acknowledged too soon");
    let logs = server.logs();
    assert!(logs.contains("transient failure 2 of 2"), "no retries logged:\n{logs}");
}

/// `premise sandbox numbers` prints the table the README shows.
#[test]
fn the_numbers_command_prints_the_readme_table() {
    let output = support::premise().args(["sandbox", "numbers"]).output().unwrap();
    assert!(output.status.success());
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.contains("`16505550104`"), "{table}");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(readme.contains(&table), "the README's table differs from `premise sandbox numbers`");
}

async fn outcome(receiver: &Receiver, id: &str) -> (String, Option<u64>) {
    wait_for(Duration::from_secs(10), "a sent or failed status", || {
        statuses(receiver).get(id).is_some_and(|e| !e.is_empty())
    })
    .await;
    let got = statuses(receiver);
    let (status, entry) = &got[id][0];
    (status.clone(), entry["errors"][0]["code"].as_u64())
}

async fn move_clock(server: &Server, token: &str, body: Value) -> i64 {
    let (status, answer) =
        server.send_json(Method::POST, "/v1/sandbox/clock", Some(token), body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["sandbox"]["clock"]["timestamp"].as_str().unwrap().parse().unwrap()
}

async fn inject(server: &Server, token: &str, body: Value) -> (StatusCode, Value) {
    server.send_json(Method::POST, "/v1/sandbox/inbound", Some(token), body).await
}

/// Free-form messages go only within 24 hours of the customer's last message; templates always.
#[tokio::test]
async fn the_customer_service_window_follows_the_sandbox_clock() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut env = FAST.to_vec();
    env.push(("PREMISE_SANDBOX__CUSTOMER_SERVICE_WINDOW", "true"));
    // Conversation-based pricing, kept as a setting for integrations that still expect it.
    env.push(("PREMISE_SANDBOX__PRICING_MODEL", "CBP"));
    let server = Server::start_with(&db, &env).await;
    let token = server.admin_token().await;
    let receiver = Receiver::start().await;
    server.use_webhook(&token, &receiver.url()).await;

    let before = move_clock(&server, &token, json!({})).await;
    let never_wrote = send_ok(&server, &token, CUSTOMER).await;
    assert_eq!(outcome(&receiver, &never_wrote).await, ("failed".into(), Some(470)));
    // A test number with a fixed outcome has it, window or not (as the table promises).
    let test_number = send_ok(&server, &token, "16505550100").await;
    wait_for(Duration::from_secs(10), "the test number's statuses", || {
        names(statuses(&receiver).get(&test_number)) == ["sent", "delivered", "read"]
    })
    .await;
    let template = send_template(&server, &token, CUSTOMER).await;
    assert_eq!(outcome(&receiver, &template).await, ("sent".into(), None), "templates always go");

    let text = json!({"from": CUSTOMER, "type": "text", "text": {"body": "hi"}});
    assert_eq!(inject(&server, &token, text.clone()).await.0, StatusCode::CREATED);
    let inside = send_ok(&server, &token, CUSTOMER).await;
    assert_eq!(outcome(&receiver, &inside).await, ("sent".into(), None));

    let moved = move_clock(&server, &token, json!({"advance_seconds": 86_400 - 30})).await;
    assert!(moved - before >= 86_400 - 30);
    let near_the_end = send_ok(&server, &token, CUSTOMER).await;
    assert_eq!(outcome(&receiver, &near_the_end).await, ("sent".into(), None), "23:59:30 in");

    move_clock(&server, &token, json!({"advance_seconds": 30})).await;
    let at_the_end = send_ok(&server, &token, CUSTOMER).await;
    assert_eq!(outcome(&receiver, &at_the_end).await, ("failed".into(), Some(470)), "24 h on");

    assert_eq!(inject(&server, &token, text).await.0, StatusCode::CREATED);
    let reopened = send_ok(&server, &token, CUSTOMER).await;
    assert_eq!(outcome(&receiver, &reopened).await, ("sent".into(), None), "reopened");

    // Conversation and pricing on `sent` and `delivered`: the template opened a
    // business-initiated conversation that the replies inside it shared; after 24 hours the
    // customer's message made the next one user-initiated. Failed and read statuses carry none.
    wait_for(Duration::from_secs(10), "read of the last message", || {
        names(statuses(&receiver).get(&reopened)).len() == 3
    })
    .await;
    let got = statuses(&receiver);
    let conversation = |id: &str, status: &str| {
        got[id].iter().find(|(s, _)| s == status).map(|(_, entry)| entry.clone()).unwrap()
    };
    let opened = conversation(&template, "sent");
    assert_eq!(opened["conversation"]["origin"]["type"], "business_initiated", "{opened}");
    assert_eq!(
        opened["pricing"],
        json!({"billable": true, "pricing_model": "CBP", "category": "business_initiated"})
    );
    let expires: i64 =
        opened["conversation"]["expiration_timestamp"].as_str().unwrap().parse().unwrap();
    assert!((expires - before - 86_400).abs() <= 5, "{opened}");
    for (id, status) in [(&inside, "sent"), (&inside, "delivered"), (&near_the_end, "sent")] {
        assert_eq!(conversation(id, status)["conversation"], opened["conversation"], "{status}");
    }
    let user = conversation(&reopened, "delivered");
    assert_eq!(user["conversation"]["origin"]["type"], "user_initiated", "{user}");
    assert_eq!(user["pricing"]["category"], "user_initiated");
    assert_ne!(user["conversation"]["id"], opened["conversation"]["id"]);
    for (id, status) in [(&reopened, "read"), (&at_the_end, "failed"), (&never_wrote, "failed")] {
        let entry = conversation(id, status);
        assert!(entry.get("conversation").is_none() && entry.get("pricing").is_none(), "{entry}");
    }

    // Setting the clock: a day back puts the last inbound message in the future.
    let now = move_clock(&server, &token, json!({})).await;
    assert!(
        (move_clock(&server, &token, json!({"timestamp": now - 86_400})).await - (now - 86_400))
            .abs()
            <= 2
    );
    let (status, body) = server
        .send_json(
            Method::POST,
            "/v1/sandbox/clock",
            Some(&token),
            json!({"advance_seconds": "soon"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1009, "advance_seconds");
}

async fn inbound_messages_arrive_as_onprem_webhooks(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(&db, &FAST).await;
    let token = server.admin_token().await;
    let receiver = Receiver::start().await;
    server.use_webhook(&token, &receiver.url()).await;

    let from = "16505550108";
    let bodies = [
        json!({"from": from, "type": "text", "text": {"body": "Where is my order?"}, "profile": {"name": "Ada Lovelace"}}),
        json!({"from": from, "type": "image", "image": {"id": "b1c2", "mime_type": "image/jpeg", "sha256": "abc", "caption": "the box"}}),
        json!({"from": from, "type": "location", "location": {"latitude": 38.9, "longitude": -77.0, "name": "Home", "address": "1 Main St"}}),
        json!({"from": from, "type": "contacts", "contacts": [{"name": {"formatted_name": "Grace Hopper"}, "phones": [{"phone": "+1 650 555 0109", "wa_id": "16505550109", "type": "CELL"}]}]}),
        json!({"from": from, "type": "button", "button": {"payload": "TRACK", "text": "Track it"}, "context": {"from": "16315551234", "id": "gBEprevious"}}),
        json!({"from": from, "type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}, "context": {"from": "16315551234", "id": "gBEquestion"}}),
        json!({"from": from, "type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": "r2", "title": "Tomorrow", "description": "9 to 5"}}, "context": {"id": "gBElist"}}),
        json!({"from": from, "id": "ABGGFlA5Fpa", "timestamp": "1518694235", "type": "text", "text": {"body": "with my own id"}}),
    ];
    let mut ids = Vec::new();
    for body in &bodies {
        let (status, answer) = inject(&server, &token, body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        ids.push(answer["messages"][0]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids[7], "ABGGFlA5Fpa");
    let inbound = || -> Vec<Value> {
        receiver
            .hits()
            .iter()
            .filter(|h| h.body.get("messages").is_some())
            .map(|h| h.body.clone())
            .collect()
    };
    wait_for(Duration::from_secs(20), "every inbound webhook", || inbound().len() >= bodies.len())
        .await;
    let hooks = inbound();
    assert_eq!(hooks.len(), bodies.len(), "each once");
    for ((hook, sent), id) in hooks.iter().zip(&bodies).zip(&ids) {
        assert_eq!(hook["contacts"][0]["wa_id"], from, "{hook}");
        assert!(hook["contacts"][0]["profile"]["name"].is_string(), "{hook}");
        let message = &hook["messages"][0];
        assert_eq!(message["id"], id.as_str(), "in order: {hook}");
        assert_eq!(message["from"], from);
        assert!(message["timestamp"].as_str().unwrap().bytes().all(|b| b.is_ascii_digit()));
        let kind = sent["type"].as_str().unwrap();
        assert_eq!(message["type"], kind);
        assert_eq!(message[kind], sent[kind], "{hook}");
        assert_eq!(message["context"], sent["context"]);
        assert!(message.get("profile").is_none());
        assert!(hook.get("statuses").is_none() && hook.get("object").is_none(), "no envelope");
    }
    assert_eq!(hooks[0]["contacts"][0]["profile"]["name"], "Ada Lovelace");
    assert_eq!(hooks[7]["messages"][0]["timestamp"], "1518694235");

    // The integration marks it read.
    let (status, body) = server
        .send_json(
            Method::PUT,
            &format!("/v1/messages/{}", ids[0]),
            Some(&token),
            json!({"status": "read"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Refusals name the field; the same id twice is a conflict; only admins inject.
    let (status, body) =
        inject(&server, &token, json!({"from": from, "type": "image", "image": {"caption": "x"}}))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1008, "image.id");
    let (status, body) = inject(&server, &token, bodies[7].clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let user = server.user_token(&token, "integration", "Integr4tion!").await;
    let (status, _) = inject(&server, &user, bodies[0].clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn send_template_with(server: &Server, token: &str, template: Value) -> String {
    let (status, body) = server
        .send_json(
            Method::POST,
            "/v1/messages",
            Some(token),
            json!({"to": CUSTOMER, "type": "template", "template": template}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["messages"][0]["id"].as_str().unwrap().to_owned()
}

/// Template messages are checked against the registry: an error answers the POST with the
/// On-Premises code (On-Premises hydrated templates when the send was requested, `docs/onprem-api.md`
/// section 10.1); a good one is acknowledged and its hydrated text journaled. The registry is
/// managed through the admin endpoint.
#[tokio::test]
async fn templates_are_checked_against_the_registry() {
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = premise_testkit::TempDir::new("premise-journal");
    let journal_file = support::pipeline::journal_path(dir.path());
    let mut env = FAST.to_vec();
    env.push(("PREMISE_SANDBOX__JOURNAL", journal_file.to_str().unwrap()));
    let server = Server::start_with(&db, &env).await;
    let token = server.admin_token().await;
    let receiver = Receiver::start().await;
    server.use_webhook(&token, &receiver.url()).await;

    let currency = json!({"type": "currency", "currency": {"fallback_value": "$12.50", "code": "USD", "amount_1000": 12500}});
    let date = json!({"type": "date_time", "date_time": {"fallback_value": "March 3, 2027"}});
    let order = |params: Value| {
        json!({"namespace": "premise_sandbox", "name": "order_update",
        "language": {"policy": "deterministic", "code": "en_US"},
        "components": [{"type": "body", "parameters": params}]})
    };
    let good = send_template_with(
        &server,
        &token,
        order(json!([
        {"type": "text", "text": "Ada"}, {"type": "text", "text": "#1234"}, currency, date])),
    )
    .await;
    // Each error answers the POST, with the HTTP status On-Premises gave it and the part at fault.
    let cases = [
        (
            json!({"name": "no_such_template", "language": {"code": "en_US"}}),
            404,
            2001,
            "no_such_template",
        ),
        (json!({"name": "hello_world", "language": {"code": "pt_BR"}}), 404, 2001, "pt_BR"),
        (
            json!({"namespace": "elsewhere", "name": "hello_world", "language": {"code": "en_US"}}),
            404,
            2001,
            "elsewhere",
        ),
        (order(json!([{"type": "text", "text": "Ada"}])), 400, 2000, "body"),
        (
            order(
                json!([{"type": "text", "text": "Ada"}, {"type": "text", "text": "#1"}, {"type": "text", "text": "$1"}, date]),
            ),
            400,
            2012,
            "body.parameters[2]",
        ),
        (
            order(
                json!([{"type": "text", "text": "x".repeat(1100)}, {"type": "text", "text": "#1"}, currency, date]),
            ),
            400,
            2005,
            "body",
        ),
        (
            json!({"name": "delivery_photo", "language": {"code": "en_US"}, "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "not an image"}]},
            {"type": "body", "parameters": [{"type": "text", "text": "P1"}]}]}),
            400,
            2012,
            "header.parameters[0]",
        ),
        (
            json!({"name": "delivery_photo", "language": {"code": "en_US"}, "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://example.com/p.jpg"}}]},
            {"type": "body", "parameters": [{"type": "text", "text": "P1"}]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "x"}]}]}),
            400,
            2012,
            "button[0].sub_type",
        ),
        (
            json!({"name": "verification_code", "language": {"code": "en_US"}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "123456"}]}]}),
            400,
            2000,
            "button[0]",
        ),
    ];
    for (template, status, code, field) in cases {
        let (got, body) = server
            .send_json(
                Method::POST,
                "/v1/messages",
                Some(&token),
                json!({"to": CUSTOMER, "type": "template", "template": template}),
            )
            .await;
        assert_eq!(got.as_u16(), status, "{body}");
        assert_error(&body, code, field);
    }
    // The Cloud form answers the same errors with Cloud codes.
    let (got, body) = server
        .send_json(Method::POST, "/v17.0/1234567890/messages", Some(&token), json!({"messaging_product": "whatsapp",
            "to": CUSTOMER, "type": "template", "template": {"name": "nope", "language": {"code": "en_US"}}}))
        .await;
    assert_eq!(got, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], 132_001, "{body}");
    let photo = send_template_with(&server, &token, json!({"name": "delivery_photo", "language": {"code": "en_US"}, "components": [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://example.com/parcel.jpg"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "P1"}]},
        {"type": "button", "sub_type": "quick_reply", "index": "1", "parameters": [{"type": "payload", "payload": "PROBLEM-P1"}]}]})).await;
    let otp = send_template_with(&server, &token, json!({"name": "verification_code", "language": {"code": "en_US"}, "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "123456"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "123456"}]}]})).await;

    for id in [&good, &photo, &otp] {
        assert_eq!(outcome(&receiver, id).await, ("sent".into(), None));
    }
    let journal: Vec<Value> = std::fs::read_to_string(&journal_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let hydrated = |id: &str| {
        journal
            .iter()
            .find(|l| l["id"] == id)
            .map(|l| l["hydrated"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(
        hydrated(&good),
        "Hi Ada, your order #1234 of $12.50 has shipped and will arrive on March 3, 2027.\nReply STOP to stop order updates"
    );
    assert!(hydrated(&otp).starts_with("123456 is your verification code."));

    // The registry through the admin endpoint: list, add (then usable), refuse a bad one, delete.
    let (status, body) = server.get("/v1/sandbox/templates", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> =
        body["templates"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["delivery_photo", "hello_world", "order_update", "verification_code"]);
    let spanish = json!({"namespace": "premise_sandbox", "name": "hello_world", "language": "es",
        "components": [{"type": "BODY", "text": "¡Hola {{1}}!"}]});
    let (status, body) =
        server.send_json(Method::POST, "/v1/sandbox/templates", Some(&token), spanish).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let hola = send_template_with(
        &server,
        &token,
        json!({"name": "hello_world", "language": {"code": "es"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}]}),
    )
    .await;
    assert_eq!(outcome(&receiver, &hola).await, ("sent".into(), None));
    let (status, body) = server
        .send_json(Method::POST, "/v1/sandbox/templates", Some(&token),
            json!({"namespace": "n", "name": "gap", "language": "en", "components": [{"type": "BODY", "text": "{{2}}"}]}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1009, "components[0].text");
    let (status, body) = server
        .send_json(
            Method::POST,
            "/v1/sandbox/templates",
            Some(&token),
            json!({"name": "x", "language": "en", "components": []}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1009, "namespace");
    let (status, _) = server
        .send_json(Method::DELETE, "/v1/sandbox/templates/hello_world/es", Some(&token), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server
        .send_json(Method::DELETE, "/v1/sandbox/templates/hello_world/es", Some(&token), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, 1006, "hello_world");
}

/// Sends `count` texts to distinct recipients, then counts the acknowledgements journaled in
/// the next second (by then every shard has a queue, so every shard is busy throughout).
async fn paced_rate(
    server: &Server,
    token: &str,
    journal_file: &std::path::Path,
    count: usize,
) -> f64 {
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..16 {
        let (http, base, token) = (server.http.clone(), server.base.clone(), token.to_owned());
        clients.spawn(async move {
            for n in (c..count).step_by(16) {
                let response = http
                    .post(format!("{base}/v1/messages"))
                    .bearer_auth(&token)
                    .json(&json!({"to": format!("1555100{n:04}"), "type": "text", "text": {"body": "paced"}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done.unwrap();
    }
    let micros = || {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros()
            as u64
    };
    // Two seconds, so one slow moment of a busy machine weighs half as much.
    let from = micros();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let acked = std::fs::read_to_string(journal_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["at_us"].as_u64().unwrap())
        .filter(|at| (from..from + 2_000_000).contains(at))
        .count();
    assert!(acked < count / 2, "too few messages to keep every shard busy");
    acked as f64 / 2.0
}

/// Pacing mode: about 70 acknowledgements per second on one shard, about 250 on 32 (a short
/// smoke: a few seconds each, averaged over two, generous bounds).
#[tokio::test]
async fn pacing_matches_the_real_clients_throughput() {
    for (shards, count, expected) in [(1u32, 300usize, 70.0), (32, 1_600, 250.0)] {
        let db = TestDb::new(Backend::Sqlite).await;
        let dir = premise_testkit::TempDir::new("premise-journal");
        let journal_file = support::pipeline::journal_path(dir.path());
        let env = [
            ("PREMISE_SANDBOX__PACING", "true"),
            ("PREMISE_SANDBOX__LIFECYCLE", "false"),
            ("PREMISE_SANDBOX__JOURNAL", journal_file.to_str().unwrap()),
        ];
        let server = Server::start_with(&db, &env).await;
        let token = server.admin_token().await;
        if shards > 1 {
            let (status, body) = server
                .send_json(
                    Method::POST,
                    "/v1/account/shards",
                    Some(&token),
                    json!({"cc": "1", "phone_number": "6315550000", "shards": shards}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            // One message per shard, acknowledged: every shard's worker is up.
            let mut probes: HashMap<u32, String> = HashMap::new();
            for n in 0.. {
                let to = format!("1555200{n:04}");
                let crc = premise_wire::WaId::parse("to", &to).unwrap().crc32();
                probes.entry(crc % shards).or_insert(to);
                if probes.len() == shards as usize {
                    break;
                }
            }
            for to in probes.values() {
                send_ok(&server, &token, to).await;
            }
            wait_for(Duration::from_secs(20), "a message through every shard", || {
                support::pipeline::journal(&journal_file).len() >= shards as usize
            })
            .await;
        }
        let rate = paced_rate(&server, &token, &journal_file, count).await;
        eprintln!("{shards} shards: {rate:.1} msg/s");
        assert!(
            (rate - expected).abs() <= expected * 0.2,
            "{shards} shards: {rate:.0} msg/s, expected about {expected}"
        );
    }
}

/// The clock and the customers' windows are kept in the database: what is done through one
/// replica holds on another.
#[tokio::test]
async fn replicas_share_the_clock_and_the_windows() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut env = FAST.to_vec();
    env.push(("PREMISE_SANDBOX__CUSTOMER_SERVICE_WINDOW", "true"));
    let mut a = Server::start_with(&db, &env).await;
    let token = a.admin_token().await;
    let b = Server::start_with(&db, &env).await;
    let receiver = Receiver::start().await;
    a.use_webhook(&token, &receiver.url()).await;

    let text = json!({"from": CUSTOMER, "type": "text", "text": {"body": "hi"}});
    assert_eq!(inject(&a, &token, text).await.0, StatusCode::CREATED);
    let moved = move_clock(&a, &token, json!({"advance_seconds": 86_400 - 60})).await;
    let seen = || move_clock(&b, &token, json!({}));
    ask_until(Duration::from_secs(10), "B seeing A's clock", seen, |at| *at >= moved).await;
    // A leaves; B takes every shard and judges by what A recorded.
    a.terminate(Duration::from_secs(20));
    let inside = send_ok(&b, &token, CUSTOMER).await;
    assert_eq!(outcome(&receiver, &inside).await, ("sent".into(), None));
    move_clock(&b, &token, json!({"advance_seconds": 60})).await;
    let outside = send_ok(&b, &token, CUSTOMER).await;
    assert_eq!(outcome(&receiver, &outside).await, ("failed".into(), Some(470)));
}

/// The conversation a replica opened is the one another replica bills in after a failover
/// (conversations are kept in the store, not in a process). Multi-threaded: the receiver keeps
/// answering while the test waits for the first replica to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_outlives_the_replica_that_opened_it() {
    let db = TestDb::new(Backend::Postgres).await;
    let receiver = Receiver::start().await;
    // Conversations exist under conversation-based pricing, a setting since per-message pricing.
    let mut env = FAST.to_vec();
    env.push(("PREMISE_SANDBOX__PRICING_MODEL", "CBP"));
    let mut first = Server::start_with(&db, &env).await;
    let token = first.admin_token().await;
    first.use_webhook(&token, &receiver.url()).await;
    let opened_by_first = send_template(&first, &token, CUSTOMER).await;
    let sent = |id: &str| {
        let got = statuses(&receiver);
        got.get(id)?.iter().find(|(s, _)| s == "sent").map(|(_, e)| e["conversation"].clone())
    };
    wait_for(Duration::from_secs(10), "the first message sent", || {
        sent(&opened_by_first).is_some()
    })
    .await;
    first.terminate(Duration::from_secs(10));

    let second = Server::start_with(&db, &env).await;
    let (status, body) = second.login("admin", support::ADMIN_PASSWORD, None).await;
    assert_eq!(status, StatusCode::OK);
    let token = support::token_of(&body);
    let billed_by_second = send_template(&second, &token, CUSTOMER).await;
    wait_for(Duration::from_secs(10), "the second message sent", || {
        sent(&billed_by_second).is_some()
    })
    .await;
    let (opened, billed) = (sent(&opened_by_first).unwrap(), sent(&billed_by_second).unwrap());
    assert!(opened["id"].as_str().is_some_and(|id| id.len() == 32), "{opened}");
    assert_eq!(billed, opened, "one conversation across the failover");
}

/// What one replica just changed (a customer's message opening the window, a new template) is
/// what another judges by at once, not up to two seconds later: a refusal made on a replica's
/// cached state is judged again on the store's.
#[tokio::test]
async fn another_replica_judges_by_what_one_just_changed() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut env = FAST.to_vec();
    env.push(("PREMISE_SANDBOX__CUSTOMER_SERVICE_WINDOW", "true"));
    // The sender: it holds the only shard before the other replica starts.
    let sender = Server::start_with(&db, &env).await;
    let token = sender.admin_token().await;
    ask_until(
        Duration::from_secs(10),
        "the sender's shard lease",
        || db.scalar("SELECT COUNT(*) FROM shard_leases"),
        |n| *n == 1,
    )
    .await;
    let receiver = Receiver::start().await;
    sender.use_webhook(&token, &receiver.url()).await;
    let front = Server::start_with(&db, &env).await;
    for round in 0..5 {
        let customer = format!("1650555{:04}", 2_000 + round);
        let text = json!({"from": customer, "type": "text", "text": {"body": "hi"}});
        assert_eq!(inject(&front, &token, text).await.0, StatusCode::CREATED);
        let reply = send_ok(&front, &token, &customer).await;
        assert_eq!(outcome(&receiver, &reply).await, ("sent".into(), None), "round {round}");
    }
    let template = json!({"namespace": "premise_sandbox", "name": "fresh", "language": "en",
        "components": [{"type": "BODY", "text": "Hi {{1}}"}]});
    let (status, body) =
        front.send_json(Method::POST, "/v1/sandbox/templates", Some(&token), template).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = sender
        .send_json(
            Method::POST,
            "/v1/messages",
            Some(&token),
            json!({"to": CUSTOMER, "type": "template", "template": {"namespace": "premise_sandbox", "name": "fresh",
                "language": {"code": "en"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "a template registered elsewhere: {body}");
    let id = body["messages"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(outcome(&receiver, &id).await, ("sent".into(), None));
}

/// With the default settings (`check_templates = "learn"`), an integration's own templates work
/// at once: every template example of the seeds, each under a name of its own as an
/// integration's templates are, is accepted and sent; a later use of one with another shape is
/// refused as WhatsApp refuses it; learned templates are listed as learned, and an admin may
/// replace or delete them.
#[tokio::test]
async fn templates_are_learned_from_their_first_use_by_default() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut cmd = support::premise();
    cmd.env_remove("PREMISE_SANDBOX__CHECK_TEMPLATES");
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--database-url", &db.url]);
    cmd.envs(FAST.iter().filter(|(k, _)| !k.contains("CHECK_TEMPLATES")).copied());
    let server = Server::spawn(cmd);
    let token = server.admin_token().await;
    let receiver = Receiver::start().await;
    server.use_webhook(&token, &receiver.url()).await;
    let examples: Vec<(String, Value)> = premise_testkit::contract_fixtures()
        .into_iter()
        .filter(|(name, body)| name.starts_with("seed") && body["type"] == "template")
        .collect();
    assert!(examples.len() >= 9, "{}", examples.len());
    // Media named by id must have been uploaded: the examples' ids become one uploaded file's.
    let upload = server
        .http
        .post(server.url("/v1/media"))
        .bearer_auth(&token)
        .header("content-type", "application/pdf")
        .body(b"%PDF-1.4 an invoice".to_vec())
        .send()
        .await
        .unwrap();
    let uploaded: Value = upload.json().await.unwrap();
    let media_id = uploaded["media"][0]["id"].as_str().unwrap().to_owned();
    let mut sent = Vec::new();
    for (name, mut body) in examples {
        use_media(&mut body, &media_id);
        // An integration's own template, in its own namespace.
        body["template"]["name"] = json!(name);
        body["template"]["namespace"] = json!("acme_corp_namespace");
        body["to"] = json!(CUSTOMER);
        let (status, answer) =
            server.send_json(Method::POST, "/v1/messages", Some(&token), body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {answer}");
        sent.push((name, body, answer["messages"][0]["id"].as_str().unwrap().to_owned()));
    }
    for (name, _, id) in &sent {
        assert_eq!(outcome(&receiver, id).await, ("sent".into(), None), "{name}");
    }
    // The same template again, the same shape: fine; another shape: WhatsApp's refusal.
    let (name, body, _) = sent.iter().find(|(n, _, _)| n == "seed003_text_template").unwrap();
    let (status, answer) =
        server.send_json(Method::POST, "/v1/messages", Some(&token), body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, answer) =
        server.send_json(Method::POST, "/v1/messages", Some(&token), fewer_params(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_error(&answer, 2000, "body");
    let mut other_kind = body.clone();
    other_kind["template"]["components"][0]["parameters"][0] =
        json!({"type": "date_time", "date_time": {"fallback_value": "today"}});
    let (status, answer) =
        server.send_json(Method::POST, "/v1/messages", Some(&token), other_kind).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_error(&answer, 2012, "body.parameters[0]");
    // The sandbox's demo `order_update` (4 parameters, namespace premise_sandbox) does not judge
    // an integration's own `order_update` in its namespace, as Meta's Postman requests and
    // On-Premises clients send it: that one is learned, and judged as learned from then on.
    let theirs = json!({"to": CUSTOMER, "type": "template", "template": {"namespace": "ns",
        "name": "order_update", "language": {"code": "en_US"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}]}});
    let (status, answer) =
        server.send_json(Method::POST, "/v1/messages", Some(&token), theirs.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let id = answer["messages"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(outcome(&receiver, &id).await, ("sent".into(), None));
    let mut two = theirs.clone();
    two["template"]["components"][0]["parameters"] =
        json!([{"type": "text", "text": "Ada"}, {"type": "text", "text": "#1"}]);
    let (status, answer) = server.send_json(Method::POST, "/v1/messages", Some(&token), two).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_error(&answer, 2000, "body");

    // Listed as learned; replaced by an admin, it is a registered one; deleted, it is learned
    // again from its next use.
    let (_, listing) = server.get("/v1/sandbox/templates", Some(&token)).await;
    let templates = listing["templates"].as_array().unwrap();
    let learned = templates.iter().find(|t| t["name"] == name.as_str()).unwrap();
    assert_eq!(learned["learned"], true, "{learned}");
    assert_eq!(learned["namespace"], "acme_corp_namespace");
    assert!(templates.iter().any(|t| t["name"] == "hello_world" && t.get("learned").is_none()));
    let mut replacement = learned.clone();
    replacement["components"][0]["text"] = json!("Hello {{1}}, {{2}} due {{3}}");
    let (status, answer) =
        server.send_json(Method::POST, "/v1/sandbox/templates", Some(&token), replacement).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert!(answer["templates"][0].get("learned").is_none(), "{answer}");
    // Registered templates are checked as registered, namespace aside.
    let mut elsewhere = fewer_params(body);
    elsewhere["template"]["namespace"] = json!("whatever");
    let (status, answer) =
        server.send_json(Method::POST, "/v1/messages", Some(&token), elsewhere).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_error(&answer, 2000, "body");
    let response = server
        .http
        .delete(server.url(&format!("/v1/sandbox/templates/{name}/en_US")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut reshaped = body.clone();
    reshaped["template"]["components"][0]["parameters"].as_array_mut().unwrap().truncate(1);
    let (status, answer) =
        server.send_json(Method::POST, "/v1/messages", Some(&token), reshaped).await;
    assert_eq!(status, StatusCode::CREATED, "deleted, then learned anew: {answer}");
}

/// `body` (a template send) with its first component's last parameter left out.
fn fewer_params(body: &Value) -> Value {
    let mut fewer = body.clone();
    fewer["template"]["components"][0]["parameters"].as_array_mut().unwrap().pop();
    fewer
}

/// Points every media object's `id` in `value` at `media_id`.
fn use_media(value: &mut Value, media_id: &str) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if ["image", "video", "document", "audio", "sticker"].contains(&key.as_str())
                    && inner.get("id").is_some()
                {
                    inner["id"] = json!(media_id);
                }
                use_media(inner, media_id);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| use_media(v, media_id)),
        _ => {}
    }
}

/// WhatsApp as it is now, in the sandbox: every customer has a business-scoped user id (BSUID),
/// stable per number, in inbound webhooks and statuses; a username customer with no number is
/// injected and replied to by BSUID through the 24-hour window; statuses are priced per
/// message (PMP) by default; test BSUIDs behave as their test numbers; read receipts take a
/// typing indicator in both dialects.
async fn customers_by_business_scoped_id(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut env = FAST.to_vec();
    env.push(("PREMISE_SANDBOX__CUSTOMER_SERVICE_WINDOW", "true"));
    let server = Server::start_with(&db, &env).await;
    let token = server.admin_token().await;
    let receiver = Receiver::start().await;
    server.use_webhook(&token, &receiver.url()).await;
    let inbound_of = |id: &str| {
        receiver.hits().into_iter().map(|h| h.body).find(|b| b["messages"][0]["id"] == id)
    };

    // A customer with a number: their BSUID beside it, the same every time.
    let text = |extra: Value| {
        let mut body = json!({"type": "text", "text": {"body": "hi"}});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let (status, answer) =
        inject(&server, &token, text(json!({"from": CUSTOMER, "id": "ABG-ANN"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    wait_for(Duration::from_secs(10), "Ann's message", || inbound_of("ABG-ANN").is_some()).await;
    let ann = inbound_of("ABG-ANN").unwrap();
    let ann_id = ann["contacts"][0]["user_id"].as_str().unwrap().to_owned();
    assert!(ann_id.starts_with("US.") && ann_id.len() == 23, "{ann}");
    assert_eq!(ann["contacts"][0]["wa_id"], CUSTOMER);
    let (_, again) =
        inject(&server, &token, text(json!({"from": CUSTOMER, "id": "ABG-ANN2"}))).await;
    assert_eq!(again["messages"][0]["id"], "ABG-ANN2");
    wait_for(Duration::from_secs(10), "Ann again", || inbound_of("ABG-ANN2").is_some()).await;
    assert_eq!(inbound_of("ABG-ANN2").unwrap()["contacts"][0]["user_id"], ann_id.as_str());

    // Sent by number or by her BSUID (the window is open for both): statuses name her BSUID,
    // priced per message.
    let by_number = send_ok(&server, &token, CUSTOMER).await;
    let by_id = send_ok(&server, &token, &ann_id).await;
    wait_for(Duration::from_secs(10), "both read", || {
        let got = statuses(&receiver);
        names(got.get(&by_number)).len() == 3 && names(got.get(&by_id)).len() == 3
    })
    .await;
    let got = statuses(&receiver);
    for (id, recipient) in [(&by_number, CUSTOMER), (&by_id, ann_id.as_str())] {
        for (_, entry) in &got[id] {
            assert_eq!(entry["recipient_id"], recipient, "{entry}");
            assert_eq!(entry["recipient_user_id"], ann_id.as_str(), "{entry}");
        }
        let delivered = &got[id][1].1;
        assert_eq!(
            delivered["pricing"],
            json!({"billable": false, "pricing_model": "PMP", "category": "service",
                "type": "free_customer_service"}),
            "{delivered}"
        );
        assert!(delivered.get("conversation").is_none(), "{delivered}");
    }

    // A username customer: no number, a BSUID made up for them, replied to by it.
    let (status, answer) = inject(
        &server,
        &token,
        text(json!({"id": "ABG-BO", "profile": {"name": "Bo", "username": "bo.bakes"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    wait_for(Duration::from_secs(10), "Bo's message", || inbound_of("ABG-BO").is_some()).await;
    let bo = inbound_of("ABG-BO").unwrap();
    let bo_id = bo["messages"][0]["from"].as_str().unwrap().to_owned();
    assert!(bo_id.starts_with("US."), "{bo}");
    assert_eq!(
        bo["contacts"][0],
        json!({"profile": {"name": "Bo", "username": "bo.bakes"}, "wa_id": bo_id, "user_id": bo_id})
    );
    let to_bo = send_ok(&server, &token, &bo_id).await;
    assert_eq!(outcome(&receiver, &to_bo).await, ("sent".into(), None), "inside Bo's window");
    // A username customer named by a given BSUID, and one whose window never opened.
    let (status, _) =
        inject(&server, &token, text(json!({"from": "BR.9911", "profile": {"username": "cy"}})))
            .await;
    assert_eq!(status, StatusCode::CREATED);
    let stranger = send_ok(&server, &token, "DE.123456").await;
    assert_eq!(outcome(&receiver, &stranger).await, ("failed".into(), Some(470)), "no window");

    // Test BSUIDs behave as their test numbers, window or not.
    let fails = send_ok(&server, &token, "US.TEST16505550103").await;
    assert_eq!(outcome(&receiver, &fails).await, ("failed".into(), Some(1026)));
    let reads = send_ok(&server, &token, "US.TEST16505550100").await;
    wait_for(Duration::from_secs(10), "the test BSUID read", || {
        names(statuses(&receiver).get(&reads)) == ["sent", "delivered", "read"]
    })
    .await;

    // Read receipts with a typing indicator, in both dialects; a wrong one is refused by name.
    let (status, body) = server
        .send_json(
            Method::PUT,
            "/v1/messages/ABG-BO",
            Some(&token),
            json!({"status": "read", "typing_indicator": {"type": "text"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .send_json(
            Method::POST,
            "/v23.0/100000000000001/messages",
            Some(&token),
            json!({"messaging_product": "whatsapp", "status": "read", "message_id": "ABG-ANN",
                "typing_indicator": {"type": "text"}}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let (status, body) = server
        .send_json(
            Method::PUT,
            "/v1/messages/ABG-ANN",
            Some(&token),
            json!({"status": "read", "typing_indicator": {"type": "audio"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("typing_indicator.type"), "{body}");
}
