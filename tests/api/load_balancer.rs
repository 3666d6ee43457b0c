//! Three `premise` processes on one Postgres behind a real nginx, as docker-compose.yml runs
//! them. Messages flow through nginx while one replica is killed (SIGKILL) and another stopped
//! (SIGTERM): no accepted message is lost, each reaches the sandbox, each recipient's order
//! holds, the shards move to the survivors (the time is measured and printed), and a login
//! made through one replica is valid on the others.
//!
//! nginx comes from Debian (`nginx-light` or `nginx`; `.ci/run` installs it). It runs in the
//! foreground with a generated config in a temporary directory. Without it the test fails.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support;
use crate::support::pipeline::{assert_order, journal, journal_path, wait_for};
use crate::support::{ADMIN_PASSWORD, Backend, Server, TestDb, token_of};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection;

const LEASE_TTL_MS: u64 = 3000;
const LEASE_RENEW_MS: u64 = 500;
const SHARDS: usize = 8;
const SIGNING_KEY: &str = "load-balancer-test-signing-key-0123456789";

/// nginx running in the foreground; stopped when dropped.
struct Nginx {
    child: Child,
    base: String,
    dir: PathBuf,
}

impl Drop for Nginx {
    /// SIGTERM, so the master stops its workers too (a killed master leaves them running),
    /// then a kill if it has not exited within five seconds.
    fn drop(&mut self) {
        premise_testkit::stop_child(&mut self.child, Duration::from_secs(5));
    }
}

fn nginx_binary() -> PathBuf {
    let candidates = [std::env::var("NGINX").ok(), Some("/usr/sbin/nginx".into())];
    if let Some(found) = candidates.into_iter().flatten().map(PathBuf::from).find(|p| p.is_file()) {
        return found;
    }
    if Command::new("nginx").arg("-v").output().is_ok_and(|o| o.status.success()) {
        return "nginx".into();
    }
    panic!(
        "nginx is not installed: this test needs a real load balancer. \
         Install it with `apt-get install -y nginx-light` (as .ci/run does), or set NGINX=/path/to/nginx"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Nginx {
    fn start(dir: &Path, upstreams: &[&str]) -> Self {
        let binary = nginx_binary();
        let version = Command::new(&binary).arg("-V").output().unwrap();
        let built = String::from_utf8_lossy(&version.stderr).to_string();
        // Every temporary path nginx would create, inside the test's directory, so it needs
        // no write access elsewhere.
        let mut temp_paths = String::new();
        for (module, directive) in [
            ("http_proxy", "proxy_temp_path"),
            ("http_fastcgi", "fastcgi_temp_path"),
            ("http_uwsgi", "uwsgi_temp_path"),
            ("http_scgi", "scgi_temp_path"),
        ] {
            if !built.contains(&format!("--without-{module}_module")) {
                temp_paths.push_str(&format!("    {directive} {}/tmp/{module};\n", dir.display()));
            }
        }
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let port = free_port();
        let servers: String = upstreams
            .iter()
            .map(|u| format!("        server {u} max_fails=1 fail_timeout=2s;\n"))
            .collect();
        // The same choices as deploy/nginx.conf: next replica on a refused or failed
        // connection, never a second try of a POST that reached a replica.
        let config = format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\npid {dir}/nginx.pid;\n\
             error_log {dir}/error.log warn;\nevents {{ worker_connections 1024; }}\n\
             http {{\n    access_log off;\n    client_body_temp_path {dir}/tmp/body;\n{temp_paths}\
             \n    upstream premise {{\n        least_conn;\n{servers}        keepalive 32;\n    }}\n\
             \n    server {{\n        listen 127.0.0.1:{port};\n        location / {{\n\
                         proxy_pass http://premise;\n            proxy_http_version 1.1;\n\
                         proxy_set_header Connection \"\";\n\
                         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                         proxy_connect_timeout 1s;\n\
                         proxy_next_upstream error timeout http_502;\n\
                         proxy_next_upstream_tries 3;\n        }}\n    }}\n}}\n",
            dir = dir.display()
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config).unwrap();
        let child = Command::new(&binary)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
        Self { child, base: format!("http://127.0.0.1:{port}"), dir: dir.to_owned() }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

async fn live_leases(url: &str) -> Vec<(i32, String)> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let now = premise_upstream_now_ms();
    sqlx::query_as("SELECT shard, owner FROM shard_leases WHERE expires_at > $1 ORDER BY shard")
        .bind(now)
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

fn premise_upstream_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Waits until every shard has a live lease and `owners_ok` holds for the owners; returns how
/// long it took from `since`.
async fn leases_settle(
    url: &str,
    since: Instant,
    within: Duration,
    what: &str,
    owners_ok: impl Fn(&HashSet<String>) -> bool,
) -> Duration {
    loop {
        let leases = live_leases(url).await;
        let owners: HashSet<String> = leases.iter().map(|(_, o)| o.clone()).collect();
        if leases.len() == SHARDS && owners_ok(&owners) {
            return since.elapsed();
        }
        assert!(since.elapsed() < within, "{what}: leases {leases:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn login(
    http: &reqwest::Client,
    base: &str,
    body: Option<serde_json::Value>,
    password: &str,
) -> (StatusCode, serde_json::Value) {
    let mut req = http.post(format!("{base}/v1/users/login")).basic_auth("admin", Some(password));
    if let Some(body) = body {
        req = req.json(&body);
    }
    support::send(req).await
}

async fn token_valid(http: &reqwest::Client, base: &str, token: &str) -> bool {
    let resp = http.get(format!("{base}/v1/users/admin")).bearer_auth(token).send().await.unwrap();
    resp.status() == StatusCode::OK
}

#[tokio::test]
async fn replicas_behind_nginx_survive_a_kill_and_a_stop() {
    let started = Instant::now();
    let db = TestDb::new(Backend::Postgres).await;
    let dir = premise_testkit::TempDir::new("premise-lb");
    let journal_file = journal_path(dir.path());
    let journal_str = journal_file.to_str().unwrap().to_owned();
    let env = |node: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("PREMISE_NODE__NAME", node.to_owned()),
            ("PREMISE_SANDBOX__JOURNAL", journal_str.clone()),
            ("PREMISE_SANDBOX__ACK_LATENCY_MS", "2".to_owned()),
            ("PREMISE_SANDBOX__LIFECYCLE", "false".to_owned()),
            ("PREMISE_SENDER__LEASE_TTL_MS", LEASE_TTL_MS.to_string()),
            ("PREMISE_SENDER__LEASE_RENEW_MS", LEASE_RENEW_MS.to_string()),
            ("PREMISE_AUTH__TOKEN_SECRET", SIGNING_KEY.to_owned()),
            ("PREMISE_SERVER__TRUST_FORWARDED_FOR", "true".to_owned()),
            ("PREMISE_SERVER__DRAIN_DELAY_MS", "300".to_owned()),
        ]
    };
    let start = |node: &'static str| {
        let vars = env(node);
        let db = &db;
        async move {
            let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            Server::start_with(db, &refs).await
        }
    };
    let a = start("lb-a").await;
    let mut b = start("lb-b").await;
    let mut c = start("lb-c").await;
    let hosts: Vec<String> =
        [&a, &b, &c].iter().map(|s| s.base.trim_start_matches("http://").to_owned()).collect();
    let nginx = Nginx::start(dir.path(), &hosts.iter().map(String::as_str).collect::<Vec<_>>());
    let lb = nginx.base.clone();
    let http = reqwest::Client::new();
    wait_for(Duration::from_secs(10), "nginx to answer", || {
        std::net::TcpStream::connect(lb.trim_start_matches("http://")).is_ok()
    })
    .await;

    // Logins: the first-login change through nginx, then a login through each replica; every
    // token is valid on every replica.
    let (status, body) =
        login(&http, &lb, Some(json!({"new_password": ADMIN_PASSWORD})), "secret").await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", nginx.error_log());
    let mut tokens = vec![token_of(&body)];
    for server in [&a, &b, &c] {
        let (status, body) = login(&http, &server.base, None, ADMIN_PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        tokens.push(token_of(&body));
    }
    for (i, token) in tokens.iter().enumerate() {
        for server in [&a, &b, &c] {
            assert!(
                token_valid(&http, &server.base, token).await,
                "token {i} refused by {}",
                server.base
            );
        }
    }
    let token = tokens[0].clone();

    let (status, body) = support::send(
        http.post(format!("{lb}/v1/account/shards"))
            .bearer_auth(&token)
            .json(&json!({"cc": "1", "phone_number": "5550000", "shards": SHARDS})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let spread = Instant::now();
    leases_settle(&db.url, spread, Duration::from_secs(15), "shards not spread", |o| o.len() == 3)
        .await;
    let (status, body) =
        support::send(http.get(format!("{lb}/v1/health")).bearer_auth(&token)).await;
    assert_eq!(status, StatusCode::OK);
    for node in ["lb-a", "lb-b", "lb-c"] {
        assert!(body["health"][node]["role"].is_string(), "multiconnect health: {body}");
    }

    // Clients, one per recipient, each sending in order through nginx until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let accepted_count = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for r in 0..24 {
        let (http, lb, token) = (http.clone(), lb.clone(), token.clone());
        let (stop, count, errors) = (stop.clone(), accepted_count.clone(), errors.clone());
        clients.spawn(async move {
            let to = format!("1777000{r:04}");
            let mut ids = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 2_000 {
                n += 1;
                let sent = http
                    .post(format!("{lb}/v1/messages"))
                    .bearer_auth(&token)
                    .json(&json!({"to": to, "type": "text", "text": {"body": format!("#{n}")}}))
                    .send()
                    .await;
                match sent {
                    Ok(resp) if resp.status() == StatusCode::CREATED => {
                        let body: serde_json::Value = resp.json().await.unwrap();
                        ids.push(body["messages"][0]["id"].as_str().unwrap().to_owned());
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    // A request cut off with its replica: not accepted as far as the client
                    // knows. It may still have been stored (and then delivered), like any
                    // request whose answer is lost.
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            (to, ids)
        });
    }

    wait_for(Duration::from_secs(20), "300 accepted", || {
        accepted_count.load(Ordering::Relaxed) >= 300
    })
    .await;
    let killed_at = Instant::now();
    c.kill();
    let at_kill = accepted_count.load(Ordering::Relaxed);
    let takeover = leases_settle(
        &db.url,
        killed_at,
        Duration::from_millis(LEASE_TTL_MS + 4 * LEASE_RENEW_MS + 3000),
        "the killed replica's shards not taken over",
        |o| !o.contains("lb-c"),
    )
    .await;

    let stopped_at = Instant::now();
    b.sigterm();
    let at_stop = accepted_count.load(Ordering::Relaxed);
    let handover = leases_settle(
        &db.url,
        stopped_at,
        Duration::from_millis(LEASE_TTL_MS),
        "the stopped replica's shards not handed over before its leases could expire",
        |o| o.len() == 1 && o.contains("lb-a"),
    )
    .await;
    let status = tokio::task::spawn_blocking(move || {
        let status = b.wait_exit(Duration::from_secs(15));
        (status, b.logs())
    })
    .await
    .unwrap();
    assert!(status.0.success(), "SIGTERM exit {:?}:\n{}", status.0, status.1);

    // A little more traffic with one replica left, then stop the clients.
    let before_end = accepted_count.load(Ordering::Relaxed);
    wait_for(Duration::from_secs(10), "traffic through the last replica", || {
        accepted_count.load(Ordering::Relaxed) >= before_end + 100
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut accepted: HashMap<String, Vec<String>> = HashMap::new();
    while let Some(done) = clients.join_next().await {
        let (to, ids) = done.unwrap();
        accepted.insert(to, ids);
    }
    let ids: Vec<&String> = accepted.values().flatten().collect();

    wait_for(Duration::from_secs(30), "every accepted message in the sandbox", || {
        let seen: HashSet<String> = journal(&journal_file).into_iter().map(|s| s.id).collect();
        ids.iter().all(|id| seen.contains(*id))
    })
    .await;
    let sent = journal(&journal_file);
    assert_order(&sent, &accepted);
    let mut by_id: HashMap<&str, Vec<&str>> = HashMap::new();
    for s in &sent {
        by_id.entry(s.id.as_str()).or_default().push(s.node.as_str());
    }
    let repeated: Vec<_> = by_id.iter().filter(|(_, nodes)| nodes.len() > 1).collect();
    for (id, nodes) in &repeated {
        assert!(
            nodes.len() == 2 && nodes[0] == "lb-c",
            "{id} sent by {nodes:?}: only a send in flight at the kill -9 may repeat"
        );
    }
    let nodes: HashSet<&str> = sent.iter().map(|s| s.node.as_str()).collect();
    assert_eq!(nodes.len(), 3, "every replica sent: {nodes:?}");
    for token in &tokens {
        assert!(token_valid(&http, &lb, token).await, "a token died with its replica");
    }

    eprintln!(
        "load balancer: {} accepted through nginx ({} at the kill -9, {} at the SIGTERM), {} client errors, \
         {} repeats after the kill; shards taken over {takeover:?} after kill -9 (lease ttl {LEASE_TTL_MS} ms, \
         renew {LEASE_RENEW_MS} ms), handed over {handover:?} after SIGTERM (drain delay 300 ms); whole test {:?}",
        ids.len(),
        at_kill,
        at_stop,
        errors.load(Ordering::Relaxed),
        repeated.len(),
        started.elapsed()
    );
    drop(a);
    drop(nginx);
}
