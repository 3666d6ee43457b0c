//! The message contract over HTTP, through the real binary: every message type accepted with
//! 201, rejections with On-Premises status, code and a `details` naming the field, the
//! Cloud-style endpoint (success shape and error envelope), `biz_opaque_callback_data` echoed in
//! status webhooks, and marking inbound messages read on both backends.

use std::time::Duration;

use crate::support::pipeline::{Receiver, wait_for};
use crate::support::{Backend, Server, TestDb, assert_error, assert_meta};
use premise_base::UnixMs;
use premise_store::{ConnectOptions, connect};
use premise_wire::Message;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(biz_opaque_callback_data_is_echoed_in_every_status, mark_as_read);

const TO: &str = "16315551234";

/// The contract's example requests (`crates/wire/tests/fixtures`), except those that refer to
/// uploaded media ids (which must exist in the media store) and the read receipt.
fn examples() -> Vec<(String, Value)> {
    premise_testkit::contract_fixtures()
        .into_iter()
        .filter(|(name, _)| name != "postman_mark_message_as_read")
        .filter(|(_, v)| Message::parse(v).is_ok_and(|m| m.media_id().is_none()))
        .collect()
}

async fn post(server: &Server, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    server.send_json(Method::POST, path, Some(token), body).await
}

#[tokio::test]
async fn every_type_is_accepted_over_http() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;
    let examples = examples();
    let types: std::collections::BTreeSet<String> =
        examples.iter().map(|(_, v)| v["type"].as_str().unwrap_or("text").to_owned()).collect();
    for kind in [
        "text",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "contacts",
        "location",
        "template",
        "hsm",
        "interactive",
    ] {
        assert!(types.contains(kind), "no example of {kind}");
    }
    // Media sent by id must have been uploaded: the examples' ids become one uploaded file's.
    let upload = server
        .http
        .post(server.url("/v1/media"))
        .bearer_auth(&token)
        .header("content-type", "image/png")
        .body(vec![0x89, b'P', b'N', b'G', 1, 2, 3])
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::CREATED);
    let uploaded: Value = upload.json().await.unwrap();
    let media_id = uploaded["media"][0]["id"].as_str().unwrap().to_owned();
    for (name, request) in &examples {
        let request = match premise_wire::Message::parse(request)
            .ok()
            .and_then(|m| m.media_id().map(str::to_owned))
        {
            Some(example_id) => {
                serde_json::from_str(&request.to_string().replace(&example_id, &media_id)).unwrap()
            }
            None => request.clone(),
        };
        let (status, body) = post(&server, &token, "/v1/messages", request).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
        assert!(body["messages"][0]["id"].as_str().is_some_and(|id| id.len() == 27), "{body}");
        assert_meta(&body);
    }
    // An id that was never uploaded is refused before anything is queued.
    let unknown =
        json!({"to": TO, "type": "image", "image": {"id": "36c484d1-1283-4b94-988d-7276bdec4de2"}});
    let (status, body) = post(&server, &token, "/v1/messages", unknown).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["errors"][0]["code"], 1006, "{body}");
    assert!(body["errors"][0]["details"].as_str().unwrap().contains("36c484d1"), "{body}");
    // Cloud-only fields the seed lists are accepted on /v1/messages too.
    let reaction = json!({"messaging_product": "whatsapp", "to": TO, "type": "reaction",
        "context": {"message_id": "wamid.HBgL"}, "reaction": {"message_id": "wamid.HBgL", "emoji": "\u{1F44D}"}});
    let (status, body) = post(&server, &token, "/v1/messages", reaction).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn rejections_have_onprem_status_code_and_path() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;
    let row = |n: usize| json!({"id": format!("r{n}"), "title": "t"});
    let cases = [
        (
            json!({"to": TO, "type": "text", "text": {"body": "x".repeat(4097)}}),
            400,
            1001,
            "text.body: at most 4096",
        ),
        (json!({"to": TO, "type": "telepathy"}), 501, 1026, "type: 'telepathy'"),
        (
            json!({"to": TO, "recipient_type": "group", "text": {"body": "x"}}),
            400,
            1002,
            "recipient_type",
        ),
        (json!({"to": TO, "text": {"body": "x"}, "priority": "high"}), 400, 1010, "'priority'"),
        (json!({"to": TO, "type": "image", "image": {}}), 400, 1008, "image: exactly one"),
        (
            json!({"to": TO, "type": "image", "image": {"link": "ftp://example.com/a.png"}}),
            400,
            1009,
            "image.link",
        ),
        (
            json!({"to": TO, "type": "location", "location": {"latitude": "north", "longitude": 1, "name": "n", "address": "a"}}),
            400,
            1009,
            "location.latitude",
        ),
        (
            json!({"to": TO, "type": "interactive", "interactive": {"type": "list", "body": {"text": "b"},
                "action": {"button": "Menu", "sections": [
                    {"title": "a", "rows": [row(0)]},
                    {"title": "b", "rows": [row(1), row(2), row(3), {"id": "r4", "title": "x".repeat(25)}]}]}}}),
            400,
            1009,
            "interactive.action.sections[1].rows[3].title: at most 24 characters",
        ),
        (
            json!({"to": TO, "type": "interactive", "interactive": {"type": "list", "body": {"text": "b"},
                "action": {"button": "Menu", "sections": [{"rows": (0..11).map(row).collect::<Vec<_>>()}]}}}),
            400,
            2016,
            "interactive.action.sections[0].rows",
        ),
        (
            json!({"to": TO, "type": "template", "template": {"name": "t", "language": {"code": "en"},
                "components": [{"type": "button", "sub_type": "quick_reply", "index": "10", "parameters": [{"type": "payload", "payload": "p"}]}]}}),
            400,
            1009,
            "template.components[0].index",
        ),
        (
            json!({"to": TO, "type": "contacts", "contacts": [{"name": {"formatted_name": "A"}}]}),
            400,
            1008,
            "contacts[0].name: at least one of",
        ),
        (json!({"to": TO, "text": {"body": ["x"]}}), 400, 1009, "text.body: expected a string"),
    ];
    for (request, status, code, details) in cases {
        let (got, body) = post(&server, &token, "/v1/messages", request.clone()).await;
        assert_eq!(got.as_u16(), status, "{request}: {body}");
        assert_error(&body, code, details);
    }
}

#[tokio::test]
async fn cloud_endpoint_answers_in_cloud_shapes() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;
    let path = "/v17.0/1234567890/messages";

    let (status, body) = post(
        &server,
        &token,
        path,
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+1 631-555-1234",
            "type": "text", "text": {"preview_url": true, "body": "https://example.com"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(body["contacts"], json!([{"input": "+1 631-555-1234", "wa_id": TO}]));
    let id = body["messages"][0]["id"].as_str().unwrap();
    assert!(id.starts_with("wamid."), "{id}");
    assert!(body.get("meta").is_none(), "{body}");

    // Every seed 003 example (Cloud requests) goes through.
    for (name, request) in examples().into_iter().filter(|(n, _)| n.starts_with("seed003_")) {
        let (status, body) = post(&server, &token, path, request).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
    }

    // Errors: Cloud's envelope with Cloud's codes.
    let assert_cloud_error = |body: &Value, code: u64, details: &str| {
        let error = &body["error"];
        assert_eq!(error["code"], code, "{body}");
        assert_eq!(error["type"], "OAuthException", "{body}");
        assert!(error["message"].as_str().is_some_and(|m| m.contains(&format!("(#{code})"))));
        assert!(error["fbtrace_id"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
        let got = error["error_data"]["details"].as_str().unwrap_or_default();
        assert!(got.contains(details), "details {got:?} lack {details:?}");
        assert!(body.get("errors").is_none(), "{body}");
    };
    let (status, body) = post(
        &server,
        &token,
        path,
        json!({"messaging_product": "whatsapp", "to": TO, "type": "text", "text": {"body": "x".repeat(4097)}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_cloud_error(&body, 131_001, "text.body: at most 4096");
    let (status, body) =
        post(&server, &token, path, json!({"to": TO, "type": "text", "text": {"body": "x"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_cloud_error(&body, 131_008, "'messaging_product'");
    let (status, body) = post(
        &server,
        &token,
        path,
        json!({"messaging_product": "whatsapp", "to": TO, "type": "image", "image": {"link": "nope"}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_cloud_error(&body, 131_009, "image.link");
    let (status, body) = post(
        &server,
        &token,
        path,
        json!({"messaging_product": "whatsapp", "to": TO, "type": "hologram"}),
    )
    .await;
    assert_eq!(status.as_u16(), 501);
    assert_cloud_error(&body, 131_026, "hologram");
    let (status, body) = post(&server, "not-a-token", path, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_cloud_error(&body, 190, "Invalid credentials");

    // Paths that only look like it are still On-Premises 404s.
    let (status, body) = post(&server, &token, "/v1/nothing/messages", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, 1006, "/v1/nothing/messages");
}

async fn biz_opaque_callback_data_is_echoed_in_every_status(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env =
        [("PREMISE_SANDBOX__DELIVERED_AFTER_MS", "20"), ("PREMISE_SANDBOX__READ_AFTER_MS", "20")];
    let server = Server::start_with(&db, &env).await;
    let token = server.admin_token().await;
    let receiver = Receiver::start().await;
    server.use_webhook(&token, &receiver.url()).await;

    let (status, body) = post(
        &server,
        &token,
        "/v1/messages",
        json!({"to": TO, "type": "text", "text": {"body": "tracked"}, "biz_opaque_callback_data": "campaign-7"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let tracked = body["messages"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = post(
        &server,
        &token,
        "/v17.0/1234567890/messages",
        json!({"messaging_product": "whatsapp", "to": TO, "type": "text", "text": {"body": "cloud"}, "biz_opaque_callback_data": "cloud-8"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cloud = body["messages"][0]["id"].as_str().unwrap().to_owned();
    let (_, plain, _) = server.send_text(&token, TO, "untracked").await;
    let plain = plain.unwrap();

    wait_for(Duration::from_secs(30), "sent, delivered and read of three messages", || {
        receiver.statuses().len() >= 9
    })
    .await;
    let statuses: Vec<Value> = receiver
        .hits()
        .iter()
        .flat_map(|h| h.body["statuses"].as_array().cloned().unwrap_or_default())
        .collect();
    for (id, expected) in
        [(&tracked, Some("campaign-7")), (&cloud, Some("cloud-8")), (&plain, None)]
    {
        let mine: Vec<&Value> = statuses.iter().filter(|s| s["id"] == **id).collect();
        let kinds: Vec<&str> = mine.iter().map(|s| s["status"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["sent", "delivered", "read"], "{id}");
        for s in mine {
            assert_eq!(s["biz_opaque_callback_data"].as_str(), expected, "{s}");
        }
    }
}

async fn mark_as_read(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;
    // Inbound messages arrive through the sandbox in a later step; store them directly here.
    let store = connect(&db.url, &ConnectOptions::default()).await.unwrap();
    let payload = json!({"from": TO, "id": "ABGGFlA5FpafAgo6EhW3ayDaPcBR", "timestamp": "1518694235", "type": "text", "text": {"body": "hello"}});
    for id in ["ABGGFlA5FpafAgo6EhW3ayDaPcBR", "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTA"]
    {
        assert!(
            store
                .insert_inbound(id, TO, UnixMs(1_518_694_235_000), &payload.to_string())
                .await
                .unwrap()
        );
    }

    let (status, body) = server
        .send_json(
            Method::PUT,
            "/v1/messages/ABGGFlA5FpafAgo6EhW3ayDaPcBR",
            Some(&token),
            json!({"status": "read"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_meta(&body);
    assert!(
        store.inbound("ABGGFlA5FpafAgo6EhW3ayDaPcBR").await.unwrap().unwrap().read_at.is_some()
    );

    let (status, body) = server
        .send_json(Method::PUT, "/v1/messages/gBEGunknown", Some(&token), json!({"status": "read"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, 1006, "gBEGunknown");
    let (status, body) = server
        .send_json(
            Method::PUT,
            "/v1/messages/ABGGFlA5FpafAgo6EhW3ayDaPcBR",
            Some(&token),
            json!({"status": "unread"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1009, "status");
    let (status, _) = server
        .send_json(
            Method::PUT,
            "/v1/messages/ABGGFlA5FpafAgo6EhW3ayDaPcBR",
            None,
            json!({"status": "read"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The Cloud form.
    let cloud = "/v17.0/1234567890/messages";
    let (status, body) = post(
        &server,
        &token,
        cloud,
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTA"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"success": true}));
    let (status, body) = post(
        &server,
        &token,
        cloud,
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.unknown"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], 131_006, "{body}");
}
