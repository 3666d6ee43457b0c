//! Black-box test support: the real `premise` binary on port 0 against a real database, and a
//! few helpers that speak to it the way an On-Premises integration would.
#![allow(clippy::print_stdout)]

pub mod bridge;
pub mod browser;
pub mod db;
pub mod faults;
pub mod files;
pub mod pipeline;
pub mod prometheus;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use base64::Engine;
use premise_testkit::{TempDir, fresh_postgres_url};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The password tests give `admin` at first login.
pub const ADMIN_PASSWORD: &str = "Adm1n!Passw0rd";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database for one test: a SQLite file in a temporary directory, or a fresh Postgres
/// database on the test server.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    _dir: Option<TempDir>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = TempDir::new("premise-test");
                Self { url: dir.sqlite_url(), _dir: Some(dir) }
            }
            Backend::Postgres => Self { url: fresh_postgres_url().await, _dir: None },
        }
    }

    /// A database at `url` that the test arranged itself.
    pub fn at(url: &str) -> Self {
        Self { url: url.to_owned(), _dir: None }
    }
}

/// Declares each test once per backend: `both_backends!(a, b)` expects `async fn a(Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($test:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test] async fn $test() { super::$test($crate::support::Backend::Sqlite).await; })*
        }
        mod on_postgres {
            $(#[tokio::test] async fn $test() { super::$test($crate::support::Backend::Postgres).await; })*
        }
    };
}

/// A running `premise serve`, killed when dropped.
#[derive(Debug)]
pub struct Server {
    pub base: String,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    pub http: reqwest::Client,
}

pub fn premise() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_premise"));
    // The test support reads DATABASE_URL as the Postgres server to create databases on; the
    // server under test gets its database from --database-url only.
    cmd.env_remove("DATABASE_URL").env("RUST_LOG", "info");
    // Settings from the caller's environment (PREMISE_*) must not leak into the server under
    // test: each test sets what it needs.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("PREMISE_")) {
            cmd.env_remove(key);
        }
    }
    // Most tests send free-form texts to customers who never wrote, and templates that are in
    // no registry; `tests/api/sandbox.rs` turns the window and the template checks back on.
    cmd.env("PREMISE_SANDBOX__CUSTOMER_SERVICE_WINDOW", "false");
    cmd.env("PREMISE_SANDBOX__CHECK_TEMPLATES", "false");
    cmd
}

impl Server {
    pub async fn start(db: &TestDb) -> Self {
        Self::start_with(db, &[]).await
    }

    /// Starts with extra environment variables, e.g. `("PREMISE_AUTH__TOKEN_LIFETIME_SECS", "2")`.
    pub async fn start_with(db: &TestDb, env: &[(&str, &str)]) -> Self {
        let mut cmd = premise();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--database-url", &db.url]);
        cmd.envs(env.iter().copied());
        Self::spawn(cmd)
    }

    pub fn spawn(mut cmd: Command) -> Self {
        let mut child =
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn premise");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let logs = logs.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(url) = line.split("listening on ").nth(1) {
                        let url: String =
                            url.chars().take_while(|c| !c.is_whitespace() && *c != '"').collect();
                        if url.starts_with("http://") || url.starts_with("https://") {
                            let _ = tx.send(url);
                        }
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!("premise did not start:\n{}", logs.lock().unwrap().join("\n"));
            }
        };
        Self {
            base,
            child,
            logs,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The most resident memory the server process has used so far (`VmHWM`), in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        self.memory("VmHWM:")
    }

    /// The server process's resident memory now (`VmRSS`), in bytes.
    pub fn rss_bytes(&self) -> u64 {
        self.memory("VmRSS:")
    }

    fn memory(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/<pid>/status");
        let line = status.lines().find(|l| l.starts_with(field)).expect("the field in status");
        let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap();
        kib * 1024
    }

    /// SIGKILL: the process dies at once, mid-whatever.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        self.sigterm();
        self.wait_exit(within)
    }

    /// Sends SIGTERM without waiting.
    pub fn sigterm(&self) {
        self.signal("-TERM");
    }

    /// Sends a signal (`-STOP`, `-CONT`, `-TERM`, ...) without waiting.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {signal} failed");
    }

    /// Waits for the process to exit; panics after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "premise did not exit within {within:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `POST /v1/users/login` with Basic credentials and an optional body.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.post(self.url("/v1/users/login")).basic_auth(user, Some(password));
        if let Some(body) = body {
            req = req.json(&body);
        }
        send(req).await
    }

    /// Does the first-login password change of `admin` (if still pending) and returns a token.
    pub async fn admin_token(&self) -> String {
        let (status, body) =
            self.login("admin", "secret", Some(json!({ "new_password": ADMIN_PASSWORD }))).await;
        if status == StatusCode::OK {
            return token_of(&body);
        }
        let (status, body) = self.login("admin", ADMIN_PASSWORD, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        token_of(&body)
    }

    /// Creates a `ROLE_USER` account through the API and returns a token for it.
    pub async fn user_token(&self, admin: &str, username: &str, password: &str) -> String {
        let (status, body) = self
            .send_json(
                reqwest::Method::POST,
                "/v1/users",
                Some(admin),
                json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = self.login(username, password, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        token_of(&body)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        send(req).await
    }

    /// `method path` with `token`, and `body` as JSON if given.
    pub async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        match body {
            Some(body) => self.send_json(method, path, Some(token), body).await,
            None => send(self.http.request(method, self.url(path)).bearer_auth(token)).await,
        }
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        send(req).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("request reaches premise");
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("answer is not JSON ({status}): {text:?}"));
    (status, body)
}

pub fn token_of(body: &Value) -> String {
    body["users"][0]["token"].as_str().unwrap_or_else(|| panic!("no token in {body}")).to_owned()
}

/// Asserts the On-Premises error envelope: one error with this code, a title, `details`
/// containing `details_part`, and `meta`.
#[track_caller]
pub fn assert_error(body: &Value, code: u64, details_part: &str) {
    let error = &body["errors"][0];
    assert_eq!(error["code"], code, "{body}");
    assert!(error["title"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
    let details = error["details"].as_str().unwrap_or_else(|| panic!("no details: {body}"));
    assert!(details.contains(details_part), "details {details:?} lacks {details_part:?}");
    assert_meta(body);
}

#[track_caller]
pub fn assert_meta(body: &Value) {
    assert_eq!(body["meta"]["api_status"], "stable", "{body}");
    assert!(body["meta"]["version"].as_str().is_some_and(|v| v.starts_with('v')), "{body}");
}

/// The decoded payload of a JWT.
pub fn jwt_payload(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("three segments");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap(),
    )
    .unwrap()
}
