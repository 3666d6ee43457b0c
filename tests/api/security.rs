//! Security probes, black-box, on the real binary, as an attacker or a hostile far side would
//! try them (the OWASP API Security Top 10 items the docs' "Security" section walks through):
//! what Cloud answers is read only up to a cap, the Cloud token goes only to Meta's hosts and
//! never through a redirect, and links are not fetched from internal addresses nor with a
//! provider's credentials anywhere but the provider's hosts. The internal servers here are
//! loopback servers the tests run, which must see nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support;
use crate::support::pipeline::wait_for;
use crate::support::{Backend, Server, TestDb};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use premise_testkit::cloud::webhooks::{image_message, messages_payload};
use premise_testkit::cloud::{APP_SECRET, PHONE_NUMBER_ID};
use reqwest::StatusCode;

const ACCESS_TOKEN: &str = "the-cloud-access-token";

/// A loopback server that must never be asked anything: counts what reaches it, and the
/// `Authorization` headers it saw.
#[derive(Clone, Default)]
struct Internal {
    hits: Arc<AtomicU64>,
    authorizations: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Internal {
    async fn start() -> (Self, String) {
        let internal = Self::default();
        let app = Router::new().fallback(internal_hit).with_state(internal.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (internal, url)
    }

    fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

async fn internal_hit(State(internal): State<Internal>, headers: HeaderMap) -> &'static str {
    internal.hits.fetch_add(1, Ordering::Relaxed);
    if let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        internal.authorizations.lock().unwrap().push(auth.to_owned());
    }
    "secret internal data"
}

/// A Cloud API that answers sends with 300 MB, and media lookups with URLs pointing at an
/// internal server, directly or by a redirect.
#[derive(Clone)]
struct HostileCloud {
    internal_url: String,
    base: String,
    sends: Arc<AtomicU64>,
    lookups: Arc<AtomicU64>,
}

const HUGE: u64 = 300 * 1024 * 1024;

impl HostileCloud {
    async fn start(internal_url: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let cloud = Self {
            internal_url: internal_url.to_owned(),
            base,
            sends: Arc::default(),
            lookups: Arc::default(),
        };
        let app = Router::new()
            .route("/v23.0/{number}/messages", post(huge_answer))
            .route("/v23.0/{id}", get(lookup))
            .route("/redirect", get(redirect))
            .with_state(cloud.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        cloud
    }
}

/// 300 MB of JSON-ish bytes, streamed (the fake holds none of it), with no length announced.
async fn huge_answer(State(cloud): State<HostileCloud>) -> Response {
    cloud.sends.fetch_add(1, Ordering::Relaxed);
    let chunk = bytes::Bytes::from(vec![b' '; 1024 * 1024]);
    let stream = futures_util::stream::iter(
        (0..HUGE / (1024 * 1024)).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );
    (AxumStatus::OK, Body::from_stream(stream)).into_response()
}

/// The number's check answers small; a media lookup names an internal URL: `internal` directly,
/// `redirected` through this server's own `/redirect`.
async fn lookup(State(cloud): State<HostileCloud>, Path(id): Path<String>) -> Response {
    if id == PHONE_NUMBER_ID {
        let phone = serde_json::json!({"display_phone_number": "15550783881", "verified_name": "Acme",
            "quality_rating": "GREEN", "id": PHONE_NUMBER_ID});
        return axum::Json(phone).into_response();
    }
    cloud.lookups.fetch_add(1, Ordering::Relaxed);
    let url = match id.as_str() {
        "1001" => format!("{}/internal-admin", cloud.internal_url),
        _ => format!("{}/redirect", cloud.base),
    };
    axum::Json(serde_json::json!({"messaging_product": "whatsapp", "url": url,
        "mime_type": "image/jpeg", "sha256": "00", "file_size": 20, "id": id}))
    .into_response()
}

async fn redirect(State(cloud): State<HostileCloud>) -> Response {
    let target = format!("{}/internal-admin", cloud.internal_url);
    (AxumStatus::FOUND, [(header::LOCATION, target)]).into_response()
}

async fn bridge(db: &TestDb, cloud: &HostileCloud) -> Server {
    Server::start_with(
        db,
        &[
            ("PREMISE_UPSTREAM__KIND", "cloud"),
            ("PREMISE_CLOUD__BASE_URL", &cloud.base),
            ("PREMISE_CLOUD__PHONE_NUMBER_ID", PHONE_NUMBER_ID),
            ("PREMISE_CLOUD__ACCESS_TOKEN", ACCESS_TOKEN),
            ("PREMISE_CLOUD__APP_SECRET", APP_SECRET),
            ("PREMISE_CLOUD__TIMEOUT_MS", "20000"),
            ("PREMISE_SENDER__SEND_TIMEOUT_MS", "30000"),
            ("PREMISE_SENDER__RETRY_INITIAL_MS", "50"),
            ("PREMISE_SENDER__RETRY_MAX_MS", "200"),
        ],
    )
    .await
}

/// Cloud answering every send with 300 MB: each answer is read up to its cap (1 MB) and the
/// send counts as a transient failure, retried; four sends at once and their retries leave the
/// server's memory where it was (it grew by ~800 MB a send, 2.3 GB for four, before).
#[tokio::test]
async fn answers_from_cloud_are_read_up_to_a_cap() {
    let (_internal, internal_url) = Internal::start().await;
    let cloud = HostileCloud::start(&internal_url).await;
    let db = TestDb::new(Backend::Sqlite).await;
    let server = bridge(&db, &cloud).await;
    let token = server.admin_token().await;
    let before = server.rss_bytes();
    for n in 0..4 {
        let (status, _, body) = server.send_text(&token, &format!("1631555100{n}"), "hi").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    wait_for(Duration::from_secs(30), "sends and their retries", || {
        cloud.sends.load(Ordering::Relaxed) >= 12
    })
    .await;
    let peak = server.peak_rss_bytes();
    eprintln!("RSS before {} MB, peak {} MB", before >> 20, peak >> 20);
    assert!(peak < before + 100 * 1024 * 1024, "peak RSS {} MB", peak >> 20);
    assert!(server.logs().contains("larger than 1048576 bytes"), "logged:\n{}", server.logs());
    let (_, messages) = db_state(&db).await;
    assert_eq!(messages, 4, "kept, to be retried");
}

async fn db_state(db: &TestDb) -> (i64, i64) {
    let queued = db.scalar("SELECT COUNT(*) FROM messages WHERE status = 0").await;
    let all = db.scalar("SELECT COUNT(*) FROM messages").await;
    (queued, all)
}

/// A customer's image whose media lookup names an internal URL, directly or through a 302:
/// the access token goes to neither, nothing reaches the internal server, and the webhook is
/// still taken (the image marked as not downloadable).
#[tokio::test]
async fn the_cloud_token_goes_only_to_metas_hosts() {
    let (internal, internal_url) = Internal::start().await;
    let cloud = HostileCloud::start(&internal_url).await;
    let db = TestDb::new(Backend::Sqlite).await;
    let server = bridge(&db, &cloud).await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    for (media, id) in [("1001", "wamid.DIRECT"), ("1002", "wamid.REDIRECTED")] {
        let payload = messages_payload(
            "Eve",
            "16315551234",
            &[image_message("16315551234", id, now, media, "image/jpeg", "00", "")],
        );
        let body = payload.to_string().into_bytes();
        let signature = sign(&body);
        let answer = server
            .http
            .post(server.url("/cloud/webhook"))
            .header("x-hub-signature-256", signature)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
    }
    assert_eq!(cloud.lookups.load(Ordering::Relaxed), 2, "both media looked up");
    assert_eq!(internal.hits(), 0, "the internal server was asked: {:?}", internal.authorizations);
    assert!(!server.logs().contains(ACCESS_TOKEN));
}

fn sign(body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!("sha256={}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// The probe of API7 (server-side request forgery): a `ROLE_USER` account sends an image whose
/// link points at an internal server, naming an admin's media provider. Premise fetches
/// nothing there and sends no credentials anywhere but the provider's hosts: a link on another
/// host fails the message ("Media download error", naming why); a provider host that is
/// internal is refused at connect time unless allowed; a redirect from an allowed host to the
/// internal one is not followed. The internal server sees nothing.
#[tokio::test]
async fn links_are_never_fetched_from_internal_addresses_nor_with_credentials_elsewhere() {
    use premise_testkit::cloud::FakeCloud;
    use serde_json::json;

    let (internal, internal_url) = Internal::start().await;
    // A provider's own host, allowed although internal (127.0.0.2), that redirects to the
    // internal server.
    let edge = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let edge_url = format!("http://{}", edge.local_addr().unwrap());
    let to_internal = format!("{internal_url}/internal-admin");
    let app = Router::new().fallback(move || {
        let target = to_internal.clone();
        async move { (AxumStatus::FOUND, [(header::LOCATION, target)]).into_response() }
    });
    tokio::spawn(async move { axum::serve(edge, app).await.unwrap() });
    let fake = FakeCloud::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start_with(
        &db,
        &[
            ("PREMISE_UPSTREAM__KIND", "cloud"),
            ("PREMISE_CLOUD__BASE_URL", &fake.base_url()),
            ("PREMISE_CLOUD__PHONE_NUMBER_ID", PHONE_NUMBER_ID),
            ("PREMISE_CLOUD__ACCESS_TOKEN", ACCESS_TOKEN),
            ("PREMISE_CLOUD__APP_SECRET", APP_SECRET),
            ("PREMISE_CLOUD__MAX_PER_SECOND", "1000"),
            ("PREMISE_CLOUD__LINK_FETCH_ALLOW", "127.0.0.2"),
            ("PREMISE_SENDER__RETRY_INITIAL_MS", "50"),
            ("PREMISE_SENDER__RETRY_MAX_MS", "200"),
        ],
    )
    .await;
    fake.send_webhooks_to(
        &server.url("/cloud/webhook"),
        premise_testkit::cloud::webhooks::AutoStatuses::none(),
    );
    let admin = server.admin_token().await;
    let receiver = support::pipeline::Receiver::start().await;
    server.use_webhook(&admin, &receiver.url()).await;
    let internal_host = internal_url.trim_start_matches("http://").to_owned();
    let (status, body) = server
        .send_json(
            reqwest::Method::POST,
            "/v1/settings/application/media/providers",
            Some(&admin),
            json!([
                {"name": "cdn", "type": "www", "hosts": ["cdn.example.com"],
                    "config": {"basic": {"username": "cdnuser", "password": "cdn-password"}}},
                {"name": "local", "type": "www", "hosts": ["127.0.0.1"],
                    "config": {"bearer": "local-token"}},
                {"name": "edge", "type": "www", "hosts": ["127.0.0.2"],
                    "config": {"bearer": "edge-token"}}
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let user = server.user_token(&admin, "mallory", "M4llory!pass").await;

    let cases = [
        ("cdn", format!("{internal_url}/secret.jpg"), "not one of provider 'cdn''s hosts"),
        ("local", format!("http://{internal_host}/secret.jpg"), "internal address"),
        ("edge", format!("{edge_url}/photo.jpg"), "redirects are not followed"),
    ];
    for (n, (provider, link, says)) in cases.iter().enumerate() {
        let to = format!("1631555200{n}");
        let (status, body) = server
            .send_json(
                reqwest::Method::POST,
                "/v1/messages",
                Some(&user),
                json!({"to": to, "type": "image", "image": {"link": link, "provider": {"name": provider}}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["messages"][0]["id"].as_str().unwrap().to_owned();
        wait_for(Duration::from_secs(20), "the message's failure", || {
            receiver.by_message().get(&id).is_some_and(|s| s.contains(&"failed".to_owned()))
        })
        .await;
        let failed = receiver
            .hits()
            .iter()
            .flat_map(|h| h.body["statuses"].as_array().cloned().unwrap_or_default())
            .find(|s| s["id"] == id.as_str())
            .unwrap();
        let error = &failed["errors"][0];
        assert_eq!(error["title"], "Media download error", "{failed}");
        assert!(error["details"].as_str().unwrap().contains(says), "{failed}");
    }
    assert_eq!(internal.hits(), 0, "reached: {:?}", internal.authorizations);
    assert!(fake.uploads().is_empty(), "nothing uploaded to Cloud");
}

/// Answers carry `X-Content-Type-Options: nosniff`, authenticated ones `Cache-Control:
/// no-store`; the settings document is capped; a webhook URL's password is write-only; a
/// signed webhook too large for `/cloud/webhook` is refused in the JSON error shape (413).
#[tokio::test]
async fn answers_are_hardened_and_refusals_keep_the_error_shape() {
    use serde_json::json;

    let (_internal, internal_url) = Internal::start().await;
    let cloud = HostileCloud::start(&internal_url).await;
    let db = TestDb::new(Backend::Sqlite).await;
    let server = bridge(&db, &cloud).await;
    let token = server.admin_token().await;

    let answer =
        server.http.get(server.url("/v1/health")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(answer.headers()["x-content-type-options"], "nosniff");
    assert_eq!(answer.headers()["cache-control"], "no-store");
    let answer = server.http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(answer.headers()["x-content-type-options"], "nosniff");

    let patch = |body: serde_json::Value| {
        server.send_json(reqwest::Method::PATCH, "/v1/settings/application", Some(&token), body)
    };
    let big = "x".repeat(40 * 1024);
    assert_eq!(patch(json!({"mine": big})).await.0, StatusCode::OK);
    let (status, body) = patch(json!({"more": big})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    support::assert_error(&body, 1009, "settings: the settings would be larger than 64 KB");
    assert_eq!(patch(json!({"mine": null})).await.0, StatusCode::OK);
    let hook = "https://hookuser:hook-password@example.com/hook";
    assert_eq!(patch(json!({"webhooks": {"url": hook}})).await.0, StatusCode::OK);
    let (_, shown) = server.get("/v1/settings/application", Some(&token)).await;
    assert_eq!(
        shown["settings"]["application"]["webhooks"]["url"],
        "https://hookuser:***@example.com/hook"
    );
    assert!(!shown.to_string().contains("hook-password"));

    let body = vec![b' '; 2 * 1024 * 1024];
    let answer = server
        .http
        .post(server.url("/cloud/webhook"))
        .header("x-hub-signature-256", sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let refusal: serde_json::Value = answer.json().await.expect("a JSON body");
    support::assert_error(&refusal, 1025, "larger than the server accepts");
}

/// The access token travels to `cloud.base_url`: in clear only to this machine (a fake), so a
/// plain-http Graph URL elsewhere is refused at start, naming the setting.
#[test]
fn the_graph_url_must_be_https_beyond_this_machine() {
    let output = support::premise()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "sqlite:///nonexistent-x/x.db",
        ])
        .envs([
            ("PREMISE_UPSTREAM__KIND", "cloud"),
            ("PREMISE_CLOUD__BASE_URL", "http://graph.example.com"),
            ("PREMISE_CLOUD__PHONE_NUMBER_ID", PHONE_NUMBER_ID),
            ("PREMISE_CLOUD__ACCESS_TOKEN", ACCESS_TOKEN),
            ("PREMISE_CLOUD__APP_SECRET", APP_SECRET),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    assert!(text.contains("cloud.base_url: must be https"), "{text}");
}
