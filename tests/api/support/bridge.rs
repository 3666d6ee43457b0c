//! The Cloud bridge under test: the Cloud API fake (`premise_testkit::cloud`), the real binary
//! with `upstream.kind = cloud` bridged to it, and the integration's webhook receiver.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use premise_testkit::cloud::{
    ACCESS_TOKEN, APP_SECRET, AutoStatuses, FakeCloud, PHONE_NUMBER_ID, VERIFY_TOKEN,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::pipeline::{Receiver, wait_for};
use super::{Server, TestDb};

pub const WAIT: Duration = Duration::from_secs(30);

/// The fake, Premise bridged to it, and the integration's webhook receiver.
pub struct Bridge {
    pub fake: FakeCloud,
    pub server: Server,
    pub receiver: Receiver,
    pub token: String,
}

pub fn cloud_env(fake: &FakeCloud, access_token: &str) -> Vec<(String, String)> {
    [
        ("PREMISE_UPSTREAM__KIND", "cloud".to_owned()),
        ("PREMISE_CLOUD__BASE_URL", fake.base_url()),
        ("PREMISE_CLOUD__PHONE_NUMBER_ID", PHONE_NUMBER_ID.to_owned()),
        ("PREMISE_CLOUD__ACCESS_TOKEN", access_token.to_owned()),
        ("PREMISE_CLOUD__APP_SECRET", APP_SECRET.to_owned()),
        ("PREMISE_CLOUD__VERIFY_TOKEN", VERIFY_TOKEN.to_owned()),
        ("PREMISE_CLOUD__MAX_PER_SECOND", "1000".to_owned()),
        ("PREMISE_CLOUD__TIMEOUT_MS", "5000".to_owned()),
        // The media hosts these tests run are on loopback, which links may not reach otherwise.
        ("PREMISE_CLOUD__LINK_FETCH_ALLOW", "127.0.0.1".to_owned()),
        // Retries come quickly, so the tests do not wait on the production backoff.
        ("PREMISE_SENDER__RETRY_INITIAL_MS", "50".to_owned()),
        ("PREMISE_SENDER__RETRY_MAX_MS", "400".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

pub async fn start_server(db: &TestDb, fake: &FakeCloud, access_token: &str) -> Server {
    let env = cloud_env(fake, access_token);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start_with(db, &env).await
}

impl Bridge {
    pub async fn start(db: &TestDb, auto: AutoStatuses) -> Self {
        let fake = FakeCloud::start().await;
        let server = start_server(db, &fake, ACCESS_TOKEN).await;
        fake.send_webhooks_to(&server.url("/cloud/webhook"), auto);
        let receiver = Receiver::start().await;
        let token = server.admin_token().await;
        server.use_webhook(&token, &receiver.url()).await;
        Self { fake, server, receiver, token }
    }

    pub async fn send(&self, body: Value) -> String {
        let (status, answer) =
            self.server.send_json(Method::POST, "/v1/messages", Some(&self.token), body).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        answer["messages"][0]["id"].as_str().unwrap().to_owned()
    }

    pub async fn send_text(&self, to: &str, body: &str) -> String {
        self.send(json!({"to": to, "type": "text", "text": {"body": body}})).await
    }

    /// Uploads bytes through `/v1/media`: the Premise media id.
    pub async fn upload(&self, bytes: &[u8], mime: &str) -> String {
        let response = self
            .server
            .http
            .post(self.server.url("/v1/media"))
            .bearer_auth(&self.token)
            .header("content-type", mime)
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["media"][0]["id"].as_str().unwrap().to_owned()
    }

    /// The statuses the integration received for `id`, waiting until there are `count`.
    pub async fn statuses_of(&self, id: &str, count: usize) -> Vec<Value> {
        let all = || {
            self.receiver
                .hits()
                .iter()
                .filter(|h| h.answered == 200)
                .flat_map(|h| h.body["statuses"].as_array().cloned().unwrap_or_default())
                .filter(|s| s["id"] == id)
                .collect::<Vec<Value>>()
        };
        wait_for(WAIT, &format!("{count} statuses of {id}"), || all().len() >= count).await;
        all()
    }

    /// `GET /v1/media/{id}`: its status, content type and bytes.
    pub async fn media(&self, id: &str) -> (StatusCode, String, Vec<u8>) {
        let response = self
            .server
            .http
            .get(self.server.url(&format!("/v1/media/{id}")))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let kind = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, kind, response.bytes().await.unwrap().to_vec())
    }

    pub fn assert_nothing_invalid(&self) {
        let invalid = self.fake.invalid();
        assert!(invalid.is_empty(), "the fake found invalid requests: {invalid:#?}");
    }
}

pub fn names(statuses: &[Value]) -> Vec<&str> {
    statuses.iter().map(|s| s["status"].as_str().unwrap()).collect()
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}
