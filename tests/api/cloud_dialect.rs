//! The Cloud API's dialect, as a Cloud API integration uses it with its Graph base URL pointed
//! at Premise: sends of every type (versioned and versionless paths, template types in upper
//! case), media upload/lookup/download/delete in Cloud's form, errors in Cloud's envelope, and
//! webhooks in Cloud's form (`webhooks.format = "cloud"`), signed, checked against Meta's
//! `WebhookPayload` by the receiver, with Meta's `hub.challenge` check of the URL. On SQLite and
//! Postgres, with the sandbox and through the bridge's Cloud fake.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support;
use crate::support::pipeline::wait_for;
use crate::support::{Backend, Server, TestDb};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::IntoResponse;
use premise_testkit::cloud::schema::schemas;
use premise_testkit::cloud::webhooks::{image_message, messages_payload, sha256_hex};
use premise_testkit::cloud::{ACCESS_TOKEN, APP_SECRET, AutoStatuses, FakeCloud, PHONE_NUMBER_ID};
use premise_upstream::cloud::translate::cloud_request;
use premise_wire::Message;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    a_cloud_client_sends_every_type_and_gets_cloud_webhooks,
    media_in_the_cloud_form,
    through_the_bridge_a_cloud_client_reaches_whatsapp,
);

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "the-integrations-app-secret";
const VERIFY: &str = "the-integrations-verify-token";
const CUSTOMER: &str = "16505551234";

/// The integration's webhook endpoint, as a Cloud API integration has it: answers Meta's
/// `hub.challenge` check, and takes only signed POSTs whose body is a valid `WebhookPayload`.
#[derive(Clone, Default)]
struct CloudReceiver {
    /// The app secret the integration checks signatures with.
    secret: &'static str,
    payloads: Arc<Mutex<Vec<Value>>>,
    refused: Arc<Mutex<Vec<String>>>,
    checks: Arc<Mutex<u32>>,
}

impl CloudReceiver {
    async fn start(secret: &'static str) -> (Self, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/whatsapp", listener.local_addr().unwrap());
        let receiver = Self { secret, ..Self::default() };
        let app = Router::new()
            .route("/whatsapp", axum::routing::get(challenge).post(take))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn payloads(&self) -> Vec<Value> {
        self.payloads.lock().unwrap().clone()
    }

    /// Every status: (id, status), in arrival order.
    fn statuses(&self) -> Vec<(String, String)> {
        self.values()
            .iter()
            .flat_map(|v| v["statuses"].as_array().cloned().unwrap_or_default())
            .map(|s| {
                (s["id"].as_str().unwrap().to_owned(), s["status"].as_str().unwrap().to_owned())
            })
            .collect()
    }

    fn statuses_of(&self, id: &str) -> Vec<String> {
        self.statuses().into_iter().filter(|(i, _)| i == id).map(|(_, s)| s).collect()
    }

    /// Every change's `value`.
    fn values(&self) -> Vec<Value> {
        self.payloads()
            .iter()
            .flat_map(|p| p["entry"].as_array().cloned().unwrap_or_default())
            .flat_map(|e| e["changes"].as_array().cloned().unwrap_or_default())
            .map(|c| c["value"].clone())
            .collect()
    }

    fn assert_nothing_refused(&self) {
        let refused = self.refused.lock().unwrap();
        assert!(refused.is_empty(), "the receiver refused: {refused:?}");
    }
}

async fn challenge(
    State(receiver): State<CloudReceiver>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    *receiver.checks.lock().unwrap() += 1;
    if query.get("hub.mode").map(String::as_str) == Some("subscribe")
        && query.get("hub.verify_token").map(String::as_str) == Some(VERIFY)
    {
        query.get("hub.challenge").cloned().unwrap_or_default().into_response()
    } else {
        AxumStatus::FORBIDDEN.into_response()
    }
}

async fn take(
    State(receiver): State<CloudReceiver>,
    headers: HeaderMap,
    body: Bytes,
) -> AxumStatus {
    let signature = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
    if !premise_upstream::cloud::webhook::signed(receiver.secret.as_bytes(), &body, signature) {
        receiver.refused.lock().unwrap().push(format!("bad signature: {signature:?}"));
        return AxumStatus::UNAUTHORIZED;
    }
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let errors = schemas().check_webhook(&payload);
    if !errors.is_empty() {
        receiver.refused.lock().unwrap().push(format!("{errors:?}: {payload}"));
        return AxumStatus::BAD_REQUEST;
    }
    receiver.payloads.lock().unwrap().push(payload);
    AxumStatus::OK
}

/// Premise with the integration's Cloud-form webhook configured.
struct Setup {
    server: Server,
    token: String,
    receiver: CloudReceiver,
}

impl Setup {
    /// `secret`: `webhooks.secret`, or none to have `[cloud] app_secret` sign.
    async fn start(db: &TestDb, env: &[(&str, &str)], secret: Option<&'static str>) -> Self {
        let mut env = env.to_vec();
        env.extend([
            ("PREMISE_CLOUD__PHONE_NUMBER_ID", PHONE_NUMBER_ID),
            ("PREMISE_CLOUD__BUSINESS_ACCOUNT_ID", "419561257915477"),
            ("PREMISE_CLOUD__DISPLAY_PHONE_NUMBER", "15550783881"),
        ]);
        let server = Server::start_with(db, &env).await;
        let token = server.admin_token().await;
        let (receiver, url) = CloudReceiver::start(secret.unwrap_or(APP_SECRET)).await;
        let mut webhooks = json!({"url": url, "format": "cloud", "verify_token": VERIFY,
            "message": {"sent": true, "delivered": true, "read": true}});
        if let Some(secret) = secret {
            webhooks["secret"] = json!(secret);
        }
        server.patch_settings(&token, json!({ "webhooks": webhooks })).await;
        assert_eq!(*receiver.checks.lock().unwrap(), 1, "the URL was checked once");
        Self { server, token, receiver }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request =
            self.server.http.request(method, self.server.url(path)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        support::send(request).await
    }

    /// A Cloud send: the `wamid.` id Premise answered.
    async fn send(&self, path: &str, body: Value) -> String {
        let (status, answer) = self.call(Method::POST, path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::OK, "{path} {body}: {answer}");
        assert_eq!(answer["messaging_product"], "whatsapp");
        let id = answer["messages"][0]["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("wamid."), "{answer}");
        id
    }

    /// A Cloud-form upload: the numeric media id.
    async fn upload(&self, path: &str, bytes: &[u8], mime: &str) -> String {
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", mime.to_owned())
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes.to_vec())
                    .file_name("f")
                    .mime_str(mime)
                    .unwrap(),
            );
        let response = self
            .server
            .http
            .post(self.server.url(path))
            .bearer_auth(&self.token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        assert!(id.len() >= 15 && id.bytes().all(|b| b.is_ascii_digit()), "a numeric id: {id}");
        id
    }
}

/// Every message type, in Cloud's form, for `to`: the contract's fixtures as the Cloud API
/// takes them, media naming `media`.
fn cloud_sends(media: &str) -> Vec<(String, Value)> {
    premise_testkit::contract_fixtures()
        .into_iter()
        .filter_map(|(name, request)| {
            let message = Message::parse(&request).ok()?;
            let ids = premise_upstream::cloud::translate::uploaded_media(&message)
                .into_iter()
                .map(|id| (id, media.to_owned()))
                .collect();
            Some((name, cloud_request(&message, &ids)))
        })
        .collect()
}

async fn a_cloud_client_sends_every_type_and_gets_cloud_webhooks(backend: Backend) {
    let db = TestDb::new(backend).await;
    let setup = Setup::start(&db, &[], Some(SECRET)).await;
    let media = setup
        .upload(&format!("/{PHONE_NUMBER_ID}/media"), b"\xff\xd8\xff\xe0 jpeg", "image/jpeg")
        .await;
    let mut ids = Vec::new();
    for (n, (name, mut body)) in cloud_sends(&media).into_iter().enumerate() {
        body["to"] = json!(format!("1631555{n:04}"));
        // Half through the versioned path, half through the versionless one.
        let path = if n % 2 == 0 {
            format!("/v23.0/{PHONE_NUMBER_ID}/messages")
        } else {
            format!("/{PHONE_NUMBER_ID}/messages")
        };
        ids.push((name, setup.send(&path, body).await));
    }
    assert!(ids.len() >= 40);
    // Template types in upper case, as clients send them.
    let upper = setup
        .send(
            "/v21.0/106540352242922/messages",
            json!({"messaging_product": "whatsapp", "to": "16315559999", "type": "template",
                "template": {"name": "order_update", "language": {"code": "en_US"}, "components": [
                    {"type": "BODY", "parameters": [{"type": "TEXT", "text": "Ada"}]},
                    {"type": "BUTTON", "sub_type": "QUICK_REPLY", "index": "0",
                     "parameters": [{"type": "PAYLOAD", "payload": "yes"}]}]}}),
        )
        .await;
    ids.push(("upper-case template".into(), upper));
    // A customer writes (sandbox): the integration gets it in Cloud's form.
    let (status, _) = setup
        .call(
            Method::POST,
            "/v1/sandbox/inbound",
            Some(json!({"from": CUSTOMER, "type": "voice", "voice": {"id": media, "mime_type": "audio/ogg"},
                "profile": {"name": "Sheena Nelson"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for (name, id) in &ids {
        wait_for(WAIT, &format!("the statuses of {name}"), || {
            setup.receiver.statuses_of(id).len() >= 3
        })
        .await;
        assert_eq!(setup.receiver.statuses_of(id), ["sent", "delivered", "read"], "{name}");
    }
    wait_for(WAIT, "the customer's message", || {
        setup.receiver.values().iter().any(|v| v.get("messages").is_some())
    })
    .await;
    let values = setup.receiver.values();
    let inbound = values.iter().find(|v| v.get("messages").is_some()).unwrap();
    // Every customer has a business-scoped user id now, stable per number.
    let user_id = inbound["contacts"][0]["user_id"].as_str().unwrap().to_owned();
    assert!(user_id.starts_with("US.") && user_id.len() == 23, "{user_id}");
    assert_eq!(
        inbound["contacts"][0],
        json!({"profile": {"name": "Sheena Nelson"}, "wa_id": CUSTOMER, "user_id": user_id})
    );
    assert_eq!(inbound["messages"][0]["type"], "audio");
    assert_eq!(inbound["messages"][0]["audio"]["voice"], true);
    assert_eq!(
        inbound["metadata"],
        json!({"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID})
    );
    let payload = &setup.receiver.payloads()[0];
    assert_eq!(payload["entry"][0]["id"], "419561257915477");
    // Marking it read through the Cloud dialect.
    let inbound_id = inbound["messages"][0]["id"].as_str().unwrap();
    let (status, body) = setup
        .call(
            Method::POST,
            &format!("/{PHONE_NUMBER_ID}/messages"),
            Some(json!({"messaging_product": "whatsapp", "status": "read", "message_id": inbound_id})),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    setup.receiver.assert_nothing_refused();
}

async fn media_in_the_cloud_form(backend: Backend) {
    let db = TestDb::new(backend).await;
    let setup = Setup::start(&db, &[], Some(SECRET)).await;
    let bytes: Vec<u8> = (0..=255u8).cycle().take(700_000).collect();
    let id = setup.upload("/v23.0/106540352242922/media", &bytes, "video/mp4").await;
    for path in [format!("/v23.0/{id}"), format!("/{id}")] {
        let (status, found) = setup.call(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{found}");
        assert_eq!(found["messaging_product"], "whatsapp");
        assert_eq!(found["id"], id.as_str());
        assert_eq!(found["mime_type"], "video/mp4");
        assert_eq!(found["sha256"], sha256_hex(&bytes));
        assert_eq!(found["file_size"], bytes.len().to_string());
        // The URL downloads the bytes with the same token.
        let url = found["url"].as_str().unwrap();
        assert!(url.starts_with(&setup.server.base), "{url}");
        let download = setup.server.http.get(url).bearer_auth(&setup.token).send().await.unwrap();
        assert_eq!(download.status(), StatusCode::OK);
        assert_eq!(download.bytes().await.unwrap().to_vec(), bytes);
        let anonymous = setup.server.http.get(url).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    }
    // An On-Premises upload is found in the Cloud form too, and a Cloud one in /v1/media.
    let response = setup
        .server
        .http
        .post(setup.server.url("/v1/media"))
        .bearer_auth(&setup.token)
        .header("content-type", "image/png")
        .body(b"\x89PNG".to_vec())
        .send()
        .await
        .unwrap();
    let onprem: Value = response.json().await.unwrap();
    let onprem_id = onprem["media"][0]["id"].as_str().unwrap();
    let (status, found) = setup.call(Method::GET, &format!("/{onprem_id}"), None).await;
    assert_eq!((status, found["mime_type"].as_str()), (StatusCode::OK, Some("image/png")));
    let url = setup.server.url(&format!("/v1/media/{id}"));
    let download = setup.server.http.get(url).bearer_auth(&setup.token).send().await.unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.bytes().await.unwrap().len(), bytes.len());
    // Deleted, then gone, answered as the Graph API answers.
    let (status, body) = setup.call(Method::DELETE, &format!("/v23.0/{id}"), None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let (status, body) = setup.call(Method::GET, &format!("/{id}"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (body["error"]["code"].as_u64(), body["error"]["error_subcode"].as_u64()),
        (Some(100), Some(33)),
        "{body}"
    );
    // A refused upload: Cloud's envelope, Cloud's code.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"x".to_vec()).mime_str("image/jpeg").unwrap(),
    );
    let response = setup
        .server
        .http
        .post(setup.server.url(&format!("/{PHONE_NUMBER_ID}/media")))
        .bearer_auth(&setup.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 131008, "messaging_product missing: {body}");
}

#[tokio::test]
async fn errors_and_unknown_paths_are_answered_in_clouds_envelope() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;
    let (status, body) = server.get("/v23.0/106540352242922/no_such_edge", Some(&token)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], 2500, "{body}");
    let (status, body) = server
        .send_json(Method::POST, "/106540352242922/messages", Some("not-a-token"), json!({}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], 190, "{body}");
    let (status, body) = server
        .send_json(
            Method::POST,
            "/106540352242922/messages",
            Some(&token),
            json!({"to": "16315551234", "type": "text", "text": {"body": "hi"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], 131008, "messaging_product missing: {body}");
    // An On-Premises path stays On-Premises.
    let (status, body) = server.get("/v1/nothing_here", Some(&token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["errors"][0]["code"], 1006);
    // A webhook URL that fails Meta's check is refused, and the settings stay as they were.
    let receiver = support::pipeline::Receiver::start().await;
    let (status, body) = server
        .send_json(
            Method::PATCH,
            "/v1/settings/application",
            Some(&token),
            json!({"webhooks": {"url": receiver.url(), "format": "cloud", "verify_token": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["errors"][0]["details"].as_str().unwrap().contains("webhooks.url"), "{body}");
    let (_, settings) = server.get("/v1/settings/application", Some(&token)).await;
    assert_eq!(settings["settings"]["application"]["webhooks"]["format"], "onprem");
    assert_eq!(settings["settings"]["application"]["webhooks"].get("verify_token"), None);
}

async fn through_the_bridge_a_cloud_client_reaches_whatsapp(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fake = FakeCloud::start().await;
    let base = fake.base_url();
    let setup = Setup::start(
        &db,
        &[
            ("PREMISE_UPSTREAM__KIND", "cloud"),
            ("PREMISE_CLOUD__BASE_URL", &base),
            ("PREMISE_CLOUD__ACCESS_TOKEN", ACCESS_TOKEN),
            ("PREMISE_CLOUD__APP_SECRET", APP_SECRET),
            ("PREMISE_CLOUD__MAX_PER_SECOND", "1000"),
        ],
        // Signed with the app's secret, as Meta signs, since the integration set none.
        None,
    )
    .await;
    fake.send_webhooks_to(&setup.server.url("/cloud/webhook"), AutoStatuses::lifecycle());
    // Media uploaded in Cloud's form to Premise, sent by its (Premise) id: Cloud gets the bytes
    // and its own id.
    let media = setup
        .upload(&format!("/{PHONE_NUMBER_ID}/media"), b"\xff\xd8\xff\xe0 photo", "image/jpeg")
        .await;
    let image = setup
        .send(
            &format!("/v23.0/{PHONE_NUMBER_ID}/messages"),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": CUSTOMER,
                "type": "image", "image": {"id": media, "caption": "yours"}}),
        )
        .await;
    wait_for(WAIT, "the image's statuses", || setup.receiver.statuses_of(&image).len() >= 3).await;
    assert_eq!(setup.receiver.statuses_of(&image), ["sent", "delivered", "read"]);
    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].1.bytes, b"\xff\xd8\xff\xe0 photo");
    assert_eq!(fake.accepted()[0].body["image"]["id"], uploads[0].0.as_str());

    // The customer answers with a photo: the integration gets it in Cloud's form, with a media
    // id of Premise's that the Cloud media lookup serves.
    let bytes = b"\xff\xd8\xff\xe0 the customer's photo".to_vec();
    let cloud_media = fake.add_customer_media(&bytes, "image/jpeg");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let payload = messages_payload(
        "Sheena Nelson",
        CUSTOMER,
        &[image_message(
            CUSTOMER,
            "wamid.FROM-CUSTOMER",
            now,
            &cloud_media,
            "image/jpeg",
            &sha256_hex(&bytes),
            "here",
        )],
    );
    assert_eq!(fake.webhooks().post(&payload).await, 200);
    wait_for(WAIT, "the customer's photo", || {
        setup.receiver.values().iter().any(|v| v.get("messages").is_some())
    })
    .await;
    let values = setup.receiver.values();
    let inbound = &values.iter().find(|v| v.get("messages").is_some()).unwrap()["messages"][0];
    assert_eq!(inbound["id"], "wamid.FROM-CUSTOMER");
    let premise_media = inbound["image"]["id"].as_str().unwrap();
    let (status, found) = setup.call(Method::GET, &format!("/{premise_media}"), None).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let download = setup
        .server
        .http
        .get(found["url"].as_str().unwrap())
        .bearer_auth(&setup.token)
        .send()
        .await
        .unwrap();
    assert_eq!(download.bytes().await.unwrap().to_vec(), bytes);

    // A reaction to it and a read receipt: Cloud gets both, for its own id.
    let reaction = setup
        .send(
            &format!("/{PHONE_NUMBER_ID}/messages"),
            json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "reaction",
                "reaction": {"message_id": "wamid.FROM-CUSTOMER", "emoji": "👍"}}),
        )
        .await;
    let (status, _) = setup
        .call(
            Method::POST,
            &format!("/{PHONE_NUMBER_ID}/messages"),
            Some(json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.FROM-CUSTOMER"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fake.read_receipts(), ["wamid.FROM-CUSTOMER"]);
    wait_for(WAIT, "the reaction's statuses", || setup.receiver.statuses_of(&reaction).len() >= 3)
        .await;
    let sent = fake.accepted();
    let at_cloud = sent.iter().find(|a| a.body["type"] == "reaction").unwrap();
    assert_eq!(at_cloud.body["reaction"]["message_id"], "wamid.FROM-CUSTOMER");
    // A reply to Premise's own image names Cloud's id for it.
    let reply = setup
        .send(
            &format!("/{PHONE_NUMBER_ID}/messages"),
            json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text",
                "context": {"message_id": image}, "text": {"body": "as promised"}}),
        )
        .await;
    wait_for(WAIT, "the reply's statuses", || setup.receiver.statuses_of(&reply).len() >= 3).await;
    let sent = fake.accepted();
    let at_cloud = sent.iter().find(|a| a.body["type"] == "text").unwrap();
    assert_eq!(at_cloud.body["context"]["message_id"], sent[0].wamid.as_str());
    assert!(fake.invalid().is_empty(), "{:?}", fake.invalid());
    setup.receiver.assert_nothing_refused();
}

/// With nothing set in `[cloud]`, Cloud-form webhooks from the sandbox name the sandbox's own
/// number (fictional ids in Meta's shape), never empty strings; and the verify token, a secret,
/// is echoed neither in the refusal of a URL that fails its check nor in the log.
#[tokio::test]
async fn cloud_form_webhooks_work_with_the_defaults_and_keep_the_verify_token_secret() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;

    let secret_token = "do-not-echo-this-verify-token";
    let (status, body) = server
        .send_json(
            Method::PATCH,
            "/v1/settings/application",
            Some(&token),
            json!({"webhooks": {"url": "http://127.0.0.1:9/hook", "format": "cloud", "verify_token": secret_token}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("webhooks.url"), "{body}");
    assert!(!body.to_string().contains(secret_token), "echoed: {body}");
    assert!(!server.logs().contains(secret_token), "logged:\n{}", server.logs());

    let (receiver, url) = CloudReceiver::start(SECRET).await;
    server
        .patch_settings(
            &token,
            json!({"webhooks": {"url": url, "format": "cloud", "verify_token": VERIFY, "secret": SECRET,
                "message": {"sent": true}}}),
        )
        .await;
    let (status, id, answer) = server.send_text(&token, "16505550100", "hello").await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let id = id.unwrap();
    wait_for(WAIT, "the statuses", || receiver.statuses_of(&id).len() >= 3).await;
    let payload = &receiver.payloads()[0];
    assert_eq!(payload["entry"][0]["id"], "100000000000001", "{payload}");
    assert_eq!(
        payload["entry"][0]["changes"][0]["value"]["metadata"],
        json!({"display_phone_number": "15550000000", "phone_number_id": "100000000000001"})
    );
    receiver.assert_nothing_refused();
}
