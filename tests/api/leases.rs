//! Leases under faults, black-box, with real replicas on one Postgres: a replica whose lease
//! lapsed (frozen by SIGSTOP) sends nothing once it runs again, even a send it had started;
//! and leases follow the database's clock, not each replica's (replicas run 30 s ahead and
//! behind under libfaketime).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::support;
use crate::support::pipeline::{
    LEASE_RENEW_MS, LEASE_TTL_MS, Sent, ask_until, journal, journal_path, replica_env as env,
    wait_for,
};
use crate::support::{Backend, Server, TestDb};
use reqwest::StatusCode;
use serde_json::json;

fn sends_by_id(sent: &[Sent]) -> HashMap<&str, Vec<&str>> {
    let mut map: HashMap<&str, Vec<&str>> = HashMap::new();
    for s in sent {
        map.entry(s.id.as_str()).or_default().push(s.node.as_str());
    }
    map
}

async fn send_text(server: &Server, token: &str, to: &str) -> String {
    let (status, id, body) = server.send_text(token, to, "hello").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    id.unwrap()
}

/// A replica frozen (SIGSTOP) in the middle of a send, past its lease: the shard's new owner
/// sends the message; when the frozen one runs again, its send, which only waited for the
/// sandbox's acknowledgement latency, finds its lease lapsed and does not leave. Before the
/// send checked the lease, the message reached the customer twice.
#[tokio::test]
async fn a_frozen_replica_sends_nothing_after_its_lease() {
    let db = TestDb::new(Backend::Postgres).await;
    let dir = premise_testkit::TempDir::new("premise-fence");
    let journal_file = journal_path(dir.path());
    let journal_str = journal_file.to_str().unwrap();
    let slow = |node| {
        let mut env = env(node, journal_str);
        env.push(("PREMISE_SANDBOX__ACK_LATENCY_MS", "4000"));
        env
    };
    let frozen = Server::start_with(&db, &slow("frozen")).await;
    ask_until(
        Duration::from_secs(20),
        "the first replica holds the shard",
        || db.live_leases(),
        |l| l.iter().any(|(_, owner)| owner == "frozen"),
    )
    .await;
    let other = Server::start_with(&db, &slow("other")).await;
    let token = frozen.admin_token().await;

    let id = send_text(&frozen, &token, "16315551000").await;
    ask_until(
        Duration::from_secs(10),
        "the send in flight",
        || in_flight(&frozen, &token),
        |n| *n >= 1.0,
    )
    .await;
    frozen.signal("-STOP");
    let stopped_at = Instant::now();
    wait_for(Duration::from_secs(30), "the other replica's send", || {
        sends_by_id(&journal(&journal_file)).get(id.as_str()).is_some_and(|n| n.contains(&"other"))
    })
    .await;
    assert!(stopped_at.elapsed() > Duration::from_millis(LEASE_TTL_MS), "not before the lease");
    frozen.signal("-CONT");
    // The frozen replica runs again: its send's wait is long over and its pool learns the
    // shard is gone. Wait until it says so, then look at what reached the sandbox.
    let says = |server: &Server| {
        let logs = server.logs();
        // The pool finding the lease taken, or the worker finding it lapsed: whichever first.
        logs.contains("shard lease lost") || logs.contains("the shard's lease lapsed")
    };
    wait_for(Duration::from_secs(20), "the thawed replica to notice", || says(&frozen)).await;
    ask_until(
        Duration::from_secs(20),
        "its send settled",
        || in_flight(&frozen, &token),
        |n| *n == 0.0,
    )
    .await;
    let sent = journal(&journal_file);
    assert_eq!(
        sends_by_id(&sent)[id.as_str()],
        ["other"],
        "sent once, by the shard's owner; the thawed replica's own logs:\n{}",
        frozen.logs()
    );
    // It sends again when it holds a shard once more (the only one: it takes none now).
    drop(other);
    ask_until(
        Duration::from_secs(20),
        "the shard back",
        || db.live_leases(),
        |l| l.iter().any(|(_, owner)| owner == "frozen"),
    )
    .await;
    let again = send_text(&frozen, &token, "16315551000").await;
    wait_for(Duration::from_secs(20), "the next message", || {
        sends_by_id(&journal(&journal_file)).contains_key(again.as_str())
    })
    .await;
}

/// The `premise_sends_in_flight` gauge.
async fn in_flight(server: &Server, token: &str) -> f64 {
    let text = server.http.get(server.url("/metrics")).bearer_auth(token).send().await.unwrap();
    let text = text.text().await.unwrap();
    support::prometheus::parse(&text).unwrap().value("premise_sends_in_flight", &[])
}

/// libfaketime, which `scripts/test` installs (Debian's `faketime`).
fn libfaketime() -> String {
    let found = std::fs::read_dir("/usr/lib")
        .unwrap()
        .filter_map(Result::ok)
        .map(|arch| arch.path().join("faketime/libfaketime.so.1"))
        .find(|lib| lib.exists());
    found
        .expect("libfaketime is missing: install Debian's `faketime` (scripts/test does)")
        .to_string_lossy()
        .into_owned()
}

/// Three replicas, one 30 s ahead and one 30 s behind the database's clock, joining one
/// another under load: the shards spread over all three (the one behind gets its share; it
/// used to get none), nothing is sent twice (the one ahead used to take every shard from its
/// live owners at once, as expired), the clocks out of step are reported by `/v1/health`, and
/// when the one ahead is killed its shards move within the lease time (it used to take 30 s
/// more).
#[tokio::test]
async fn leases_follow_the_databases_clock() {
    let db = TestDb::new(Backend::Postgres).await;
    let dir = premise_testkit::TempDir::new("premise-clocks");
    let journal_file = journal_path(dir.path());
    let journal_str = journal_file.to_str().unwrap();
    let lib = libfaketime();
    let skewed = |node, offset| {
        let mut env = env(node, journal_str);
        env.extend([("LD_PRELOAD", lib.as_str()), ("FAKETIME", offset)]);
        env
    };
    let on_time = Server::start_with(&db, &env("on-time", journal_str)).await;
    let token = on_time.admin_token().await;
    on_time.set_shards(&token, 8).await;
    ask_until(Duration::from_secs(20), "all 8 shards held", || db.live_leases(), |l| l.len() == 8)
        .await;

    // Load through the first replica while the others join.
    let load = {
        let (http, base, token) = (on_time.http.clone(), on_time.base.clone(), token.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..1500 {
                let resp = http
                    .post(format!("{base}/v1/messages"))
                    .bearer_auth(&token)
                    .json(&json!({"to": format!("1999000{:04}", n % 40), "text": {"body": "x"}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::CREATED);
                let body: serde_json::Value = resp.json().await.unwrap();
                ids.push(body["messages"][0]["id"].as_str().unwrap().to_owned());
            }
            ids
        })
    };
    let mut ahead = Server::start_with(&db, &skewed("ahead", "+30s")).await;
    let behind = Server::start_with(&db, &skewed("behind", "-30s")).await;
    let spread = ask_until(
        Duration::from_secs(20),
        "shards on all three",
        || db.live_leases(),
        |l| {
            let owners: std::collections::HashSet<&str> =
                l.iter().map(|(_, o)| o.as_str()).collect();
            l.len() == 8 && owners.len() == 3
        },
    )
    .await;
    let ids = load.await.unwrap();
    wait_for(Duration::from_secs(60), "1,500 sends", || journal(&journal_file).len() >= 1500).await;
    let sent = journal(&journal_file);
    let by_id = sends_by_id(&sent);
    let twice: Vec<_> = by_id.iter().filter(|(_, nodes)| nodes.len() > 1).collect();
    assert!(twice.is_empty(), "sent twice: {twice:?}");
    assert!(ids.iter().all(|id| by_id.contains_key(id.as_str())), "every message sent");

    // Each replica reports how far its clock is from the database's.
    let (_, health) = ahead.get("/v1/health", Some(&token)).await;
    let warning = health["warnings"][0]["details"].as_str().unwrap_or_default().to_owned();
    assert!(warning.contains("ahead of the database's"), "{health}");
    let (_, health) = behind.get("/v1/health", Some(&token)).await;
    assert!(health["warnings"][0]["details"].as_str().unwrap().contains("behind"), "{health}");
    let (_, health) = on_time.get("/v1/health", Some(&token)).await;
    assert!(health.get("warnings").is_none(), "{health}");
    assert!(ahead.logs().contains("differs from the database's"), "logged too");

    // kill -9 the one ahead: its shards move once its leases run out on the database's clock.
    let held_ahead = spread.iter().filter(|(_, o)| o == "ahead").count();
    assert!(held_ahead > 0);
    let killed_at = Instant::now();
    ahead.kill();
    let within = Duration::from_millis(LEASE_TTL_MS + 4 * LEASE_RENEW_MS + 2000);
    ask_until(
        within,
        "the killed replica's shards taken over",
        || db.live_leases(),
        |l| l.len() == 8 && l.iter().all(|(_, o)| o != "ahead"),
    )
    .await;
    eprintln!(
        "clocks: the replica 30 s ahead's shards taken over {:?} after kill -9",
        killed_at.elapsed()
    );
}
