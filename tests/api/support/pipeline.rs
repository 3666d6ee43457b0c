//! Pipeline test support: a real HTTP server capturing webhooks, the sandbox journal, and
//! helpers that send messages the way an integration does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use serde_json::{Value, json};

use super::Server;

/// How the receiver answers.
#[derive(Debug, Clone)]
pub enum Mode {
    Ok,
    /// 200, after holding the request this long.
    Slow(Duration),
    Status(u16),
    Redirect(String),
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    pub path: String,
    pub body: Value,
    pub raw: Vec<u8>,
    pub signature: Option<String>,
    /// What the receiver answered.
    pub answered: u16,
}

/// A webhook receiver on 127.0.0.1:0 that records every POST.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub base: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    mode: Arc<Mutex<Mode>>,
    /// Requests being answered now, and the most at once.
    concurrency: Arc<Mutex<(usize, usize)>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let receiver = Self {
            base,
            hits: Arc::default(),
            mode: Arc::new(Mutex::new(Mode::Ok)),
            concurrency: Arc::default(),
        };
        let app = Router::new().fallback(record).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    /// A receiver served over HTTPS with the certificate and key in these PEM files.
    pub async fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> Self {
        use premise::certificates::ServerCerts;
        use premise::connection::Limits;
        use premise::listener::{Incoming, Tls};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}", listener.local_addr().unwrap());
        let receiver = Self {
            base,
            hits: Arc::default(),
            mode: Arc::new(Mutex::new(Mode::Ok)),
            concurrency: Arc::default(),
        };
        let certs =
            ServerCerts::new(Some((cert.to_str().unwrap(), key.to_str().unwrap()))).unwrap();
        let tls = Tls { acceptor: certs.acceptor().unwrap(), certs, required: true };
        let limits = Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 256,
        };
        let incoming = Incoming::new(listener, tls, limits).unwrap();
        let app = Router::new().fallback(record).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(incoming, app).await.unwrap() });
        receiver
    }

    pub fn url(&self) -> String {
        format!("{}/hook", self.base)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// The most requests the receiver was answering at once.
    pub fn max_concurrency(&self) -> usize {
        self.concurrency.lock().unwrap().1
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Every status accepted (answered 2xx), in arrival order: (message id, status).
    pub fn statuses(&self) -> Vec<(String, String)> {
        self.hits()
            .iter()
            .filter(|h| (200..300).contains(&h.answered))
            .flat_map(|h| h.body["statuses"].as_array().cloned().unwrap_or_default())
            .map(|s| {
                (
                    s["id"].as_str().unwrap_or("").to_owned(),
                    s["status"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    /// The accepted statuses of each message, in arrival order.
    pub fn by_message(&self) -> HashMap<String, Vec<String>> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (id, status) in self.statuses() {
            map.entry(id).or_default().push(status);
        }
        map
    }
}

async fn record(
    State(receiver): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mode = receiver.mode.lock().unwrap().clone();
    let (answered, response) = match mode {
        Mode::Ok => (200, StatusCode::OK.into_response()),
        Mode::Slow(hold) => {
            {
                let mut c = receiver.concurrency.lock().unwrap();
                c.0 += 1;
                c.1 = c.1.max(c.0);
            }
            tokio::time::sleep(hold).await;
            receiver.concurrency.lock().unwrap().0 -= 1;
            (200, StatusCode::OK.into_response())
        }
        Mode::Status(code) => (code, StatusCode::from_u16(code).unwrap().into_response()),
        Mode::Redirect(to) => (302, (StatusCode::FOUND, [("location", to)]).into_response()),
    };
    receiver.hits.lock().unwrap().push(Hit {
        at: Instant::now(),
        path: uri.path().to_owned(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body.to_vec(),
        signature: headers
            .get("x-hub-signature-256")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        answered,
    });
    response
}

/// One acknowledged send as the sandbox journaled it.
#[derive(Debug, Clone)]
pub struct Sent {
    pub at_us: u64,
    pub node: String,
    pub id: String,
    pub to: String,
}

pub fn journal(path: &Path) -> Vec<Sent> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut sent: Vec<Sent> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|v| Sent {
            at_us: v["at_us"].as_u64().unwrap(),
            node: v["node"].as_str().unwrap().to_owned(),
            id: v["id"].as_str().unwrap().to_owned(),
            to: v["to"].as_str().unwrap().to_owned(),
        })
        .collect();
    sent.sort_by_key(|s| s.at_us);
    sent
}

/// Asserts that each recipient's messages reached the sandbox in the order they were accepted
/// (`accepted`: recipient → ids in acceptance order). A message sent again after a crash may
/// repeat, but never behind a later one.
#[track_caller]
pub fn assert_order(sent: &[Sent], accepted: &HashMap<String, Vec<String>>) {
    for (recipient, ids) in accepted {
        let position: HashMap<&str, usize> =
            ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        let mut last = 0usize;
        let seen: Vec<String> = sent
            .iter()
            .filter(|s| &s.to == recipient)
            .map(|s| {
                format!("#{}@{}", position.get(s.id.as_str()).map_or(-1, |p| *p as i64), s.node)
            })
            .collect();
        for s in sent.iter().filter(|s| &s.to == recipient) {
            let Some(&p) = position.get(s.id.as_str()) else { continue };
            assert!(
                p + 1 >= last,
                "recipient {recipient}: message #{p} reached the sandbox after #{}; sandbox saw {seen:?}",
                last - 1
            );
            last = last.max(p + 1);
        }
    }
}

/// Asks the server (through `ask`) until the answer satisfies it or `timeout` passes (then
/// panics with `what`); the last answer.
pub async fn ask_until<T, F, Fut>(
    timeout: Duration,
    what: &str,
    mut ask: F,
    done: impl Fn(&T) -> bool,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let answer = ask().await;
        if done(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `check` until it holds or `timeout` passes (then panics with `what`).
pub async fn wait_for(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Server {
    pub async fn patch_settings(&self, token: &str, patch: Value) {
        let (status, body) =
            self.send_json(Method::PATCH, "/v1/settings/application", Some(token), patch).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    }

    /// Points the webhook at `url` with every status callback switched on.
    /// Sets the shard count (`POST /v1/account/shards`), which must be taken (201).
    pub async fn set_shards(&self, token: &str, shards: u32) {
        let body = json!({"cc": "1", "phone_number": "5550000", "shards": shards});
        let (status, answer) =
            self.send_json(Method::POST, "/v1/account/shards", Some(token), body).await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{answer}");
    }

    pub async fn use_webhook(&self, token: &str, url: &str) {
        self.patch_settings(token, json!({"webhooks": {"url": url, "message": {"sent": true}}}))
            .await;
    }

    /// `POST /v1/messages` with a text; the answer's status and id (if 201).
    pub async fn send_text(
        &self,
        token: &str,
        to: &str,
        body: &str,
    ) -> (reqwest::StatusCode, Option<String>, Value) {
        let (status, answer) = self
            .send_json(
                Method::POST,
                "/v1/messages",
                Some(token),
                json!({"to": to, "type": "text", "text": {"body": body}}),
            )
            .await;
        let id = answer["messages"][0]["id"].as_str().map(str::to_owned);
        (status, id, answer)
    }
}

/// A journal path in `dir`.
pub fn journal_path(dir: &Path) -> PathBuf {
    dir.join("sandbox-journal.jsonl")
}

/// The lease every multi-replica test runs with: short, so takeovers happen within a test.
pub const LEASE_TTL_MS: u64 = 3000;
pub const LEASE_RENEW_MS: u64 = 500;

/// A replica named `node` appending its sends to `journal`, with the tests' short lease.
pub fn replica_env<'a>(node: &'a str, journal: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("PREMISE_NODE__NAME", node),
        ("PREMISE_SANDBOX__JOURNAL", journal),
        ("PREMISE_SENDER__LEASE_TTL_MS", "3000"),
        ("PREMISE_SENDER__LEASE_RENEW_MS", "500"),
    ]
}
