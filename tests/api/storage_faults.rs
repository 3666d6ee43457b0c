//! Storage faults, for real: the database's disk fills up to the last byte, then space comes
//! back; the database server stops under load, then starts again. Promise 1 must hold through
//! all of it: an id only for a message the database confirmed, 503/1016 (never 500) while it
//! cannot store, readiness failing meanwhile, and Premise resuming by itself afterwards with
//! every acknowledged message sent and called back.

#![allow(clippy::print_stdout)]

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::faults::SmallDisk;
use crate::support::pipeline::{Receiver, ask_until, journal, journal_path, wait_for};
use crate::support::{Server, TestDb};
use premise_testkit::{Cluster, ClusterOptions};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What a round of concurrent sends got back.
#[derive(Debug, Default)]
struct Outcomes {
    /// Ids answered 201.
    accepted: Vec<String>,
    /// Every other answer: (HTTP status, On-Premises code, details) → how many.
    refused: BTreeMap<(u16, u64, String), usize>,
    /// How long each refusal took.
    refusal_times: Vec<Duration>,
}

impl Outcomes {
    fn count(&self, status: u16) -> usize {
        self.refused.iter().filter(|((s, _, _), _)| *s == status).map(|(_, n)| n).sum()
    }

    /// Refusals with 503/1016 whose details name the database.
    fn unavailable(&self) -> usize {
        self.refused
            .iter()
            .filter(|((s, code, details), _)| {
                *s == 503 && *code == 1016 && details.contains("database")
            })
            .map(|(_, n)| n)
            .sum()
    }
}

/// `clients` clients sending texts for `duration`, each to a recipient of its own.
async fn round(server: &Server, token: &str, clients: usize, duration: Duration) -> Outcomes {
    round_giving_up(server, token, clients, duration, Duration::from_secs(120)).await
}

/// [`round`] with clients that give up on a request after `patience` (an answer that did not
/// come counts as refused with status 0).
async fn round_giving_up(
    server: &Server,
    token: &str,
    clients: usize,
    duration: Duration,
    patience: Duration,
) -> Outcomes {
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let until = Instant::now() + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (http, url, token, outcomes) =
            (server.http.clone(), server.url("/v1/messages"), token.to_owned(), outcomes.clone());
        tasks.spawn(async move {
            let to = format!("1777000{c:04}");
            let mut n = 0;
            while Instant::now() < until {
                n += 1;
                let body = json!({"to": to, "type": "text", "text": {"body": format!("#{n} {}", "x".repeat(200))}});
                let asked = Instant::now();
                let sent = http.post(&url).bearer_auth(&token).json(&body).timeout(patience).send();
                let Ok(resp) = sent.await else {
                    let mut outcomes = outcomes.lock().unwrap();
                    *outcomes.refused.entry((0, 0, "no answer".into())).or_default() += 1;
                    outcomes.refusal_times.push(asked.elapsed());
                    continue;
                };
                let status = resp.status().as_u16();
                let answer: Value = resp.json().await.unwrap_or(Value::Null);
                let mut outcomes = outcomes.lock().unwrap();
                match answer["messages"][0]["id"].as_str() {
                    Some(id) if status == 201 => outcomes.accepted.push(id.to_owned()),
                    _ => {
                        let error = &answer["errors"][0];
                        let key = (
                            status,
                            error["code"].as_u64().unwrap_or(0),
                            error["details"].as_str().unwrap_or("").to_owned(),
                        );
                        *outcomes.refused.entry(key).or_default() += 1;
                        outcomes.refusal_times.push(asked.elapsed());
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Arc::try_unwrap(outcomes).unwrap().into_inner().unwrap()
}

/// Prints what it gives when the test fails.
struct ShownOnFailure<F: Fn() -> String>(F);

impl<F: Fn() -> String> Drop for ShownOnFailure<F> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            println!("--- database log ---\n{}", (self.0)());
        }
    }
}

/// The log lines that report errors, the first of each kind.
fn errors_in(logs: &str) -> String {
    let mut seen = HashSet::new();
    logs.lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
        .filter(|l| {
            seen.insert(l.split("error=").nth(1).unwrap_or(l).chars().take(80).collect::<String>())
        })
        .take(20)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The ids the database holds.
async fn stored_ids(db: &TestDb) -> HashSet<String> {
    db.strings("SELECT id FROM messages").await.into_iter().collect()
}

/// A server on `db` with a journal and a webhook receiver outside the faulty disk.
struct Scene<'a> {
    db: &'a TestDb,
    env: Vec<(&'static str, String)>,
    server: Server,
    token: String,
    receiver: Receiver,
    journal_file: std::path::PathBuf,
    _outside: premise_testkit::TempDir,
}

impl<'a> Scene<'a> {
    async fn start(db: &'a TestDb, extra: &[(&'static str, &str)]) -> Self {
        let outside = premise_testkit::TempDir::new("premise-storage-fault");
        let journal_file = journal_path(outside.path());
        let mut env = vec![
            ("PREMISE_SANDBOX__JOURNAL", journal_file.to_str().unwrap().to_owned()),
            ("PREMISE_SANDBOX__LIFECYCLE", "false".to_owned()),
            ("PREMISE_SENDER__LEASE_RENEW_MS", "300".to_owned()),
            ("PREMISE_SENDER__LEASE_TTL_MS", "3000".to_owned()),
        ];
        env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let server = Self::serve(db, &env).await;
        let token = server.admin_token().await;
        let receiver = Receiver::start().await;
        server.use_webhook(&token, &receiver.url()).await;
        Self { db, env, server, token, receiver, journal_file, _outside: outside }
    }

    async fn serve(db: &TestDb, env: &[(&'static str, String)]) -> Server {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Server::start_with(db, &env).await
    }

    /// A round while all is well: every send answered 201.
    async fn healthy_round(&self, duration: Duration) -> Outcomes {
        let outcomes = round(&self.server, &self.token, 16, duration).await;
        assert!(!outcomes.accepted.is_empty(), "{:?}", outcomes.refused);
        assert!(outcomes.refused.is_empty(), "{:?}", outcomes.refused);
        outcomes
    }

    /// A round once the fault cleared: messages are accepted again.
    async fn round_after(&self, duration: Duration) -> Outcomes {
        let outcomes = round(&self.server, &self.token, 16, duration).await;
        assert!(!outcomes.accepted.is_empty(), "{:?}", outcomes.refused);
        outcomes
    }

    /// Waits (up to `within`) until a message is accepted again.
    async fn resumes(&self, within: Duration, what: &str) {
        let send = || self.server.send_text(&self.token, "17770009999", what);
        ask_until(within, what, send, |answer| answer.0 == 201).await;
    }

    /// Stops the server with SIGTERM and starts it again: every id answered 201 in `rounds`
    /// must be stored, sent and called back.
    async fn restart_and_check(mut self, rounds: &[&Outcomes]) {
        self.server.terminate(Duration::from_secs(30));
        self.server = Self::serve(self.db, &self.env).await;
        let accepted: Vec<String> =
            rounds.iter().flat_map(|o| o.accepted.iter().cloned()).collect();
        let stored = stored_ids(self.db).await;
        let lost = accepted.iter().filter(|id| !stored.contains(*id)).count();
        assert_eq!(lost, 0, "{lost} of {} ids answered 201 are not stored", accepted.len());
        let (journal_file, receiver) = (&self.journal_file, &self.receiver);
        wait_for(
            Duration::from_secs(60),
            "every acknowledged message sent and called back",
            || {
                let sent: HashSet<String> =
                    journal(journal_file).into_iter().map(|s| s.id).collect();
                let called: HashSet<String> =
                    receiver.statuses().into_iter().map(|(id, _)| id).collect();
                accepted.iter().all(|id| sent.contains(id) && called.contains(id))
            },
        )
        .await;
    }
}

#[tokio::test]
async fn a_full_disk_never_acknowledges_what_it_did_not_store_on_sqlite() {
    let disk = SmallDisk::mount(24);
    let db = TestDb::at(&format!("sqlite://{}/premise.db", disk.path().display()));
    full_disk(&disk, &db, &|| {}).await;
}

#[tokio::test]
async fn a_full_disk_never_acknowledges_what_it_did_not_store_on_postgres() {
    let disk = SmallDisk::mount(64);
    let cluster = Cluster::start(&ClusterOptions {
        durable: true,
        parent: Some(disk.path().to_owned()),
        small_wal: true,
    });
    let db = TestDb::at(&cluster.fresh_database().await);
    println!("cluster ready; {} bytes left on the disk", disk.available());
    let _log = ShownOnFailure(|| cluster.log());
    // Postgres may PANIC on a full disk and, when its crash recovery cannot write either, exit:
    // then its supervisor (systemd, the container runtime) starts it again once there is room.
    let supervise = || {
        if !cluster.running() {
            println!("Postgres exited on the full disk; starting it again, as a supervisor would");
            cluster.restart();
        }
    };
    full_disk(&disk, &db, &supervise).await;
}

/// `after_freeing` runs once the space is back (a database supervisor's part).
async fn full_disk(disk: &SmallDisk, db: &TestDb, after_freeing: &dyn Fn()) {
    let scene = Scene::start(db, &[]).await;
    let before = scene.healthy_round(Duration::from_millis(500)).await;

    disk.fill();
    let full = round(&scene.server, &scene.token, 16, Duration::from_secs(3)).await;
    let (ready, _) = scene.server.get("/readyz", None).await;
    let (_, health) = scene.server.get("/v1/health", Some(&scene.token)).await;
    println!(
        "while full: {} accepted, refused {:?}; /readyz {ready}; health {health}",
        full.accepted.len(),
        full.refused
    );
    let logs = errors_in(&scene.server.logs());
    assert_eq!(full.count(500), 0, "never 500: {:?}\nserver log:\n{logs}", full.refused);
    assert!(full.unavailable() > 0, "503/1016 naming the database: {:?}", full.refused);
    assert_eq!(ready, StatusCode::SERVICE_UNAVAILABLE, "/readyz fails while the disk is full");
    assert_ne!(health["health"]["gateway_status"], "connected", "{health}");

    disk.free();
    after_freeing();
    scene.resumes(Duration::from_secs(20), "space is back").await;
    let after = scene.round_after(Duration::from_secs(2)).await;
    let (ready, _) = scene.server.get("/readyz", None).await;
    assert_eq!(ready, StatusCode::OK);
    scene.restart_and_check(&[&before, &full, &after]).await;
}

/// Postgres stopped under load: 503/1016 at once (not after the pool's whole acquire timeout
/// for every request), never 500; back by itself when Postgres is; nothing acknowledged lost.
#[tokio::test]
async fn a_stopped_database_answers_503_at_once_and_loses_nothing() {
    let cluster = Cluster::start(&ClusterOptions { durable: true, ..ClusterOptions::default() });
    let db = TestDb::at(&cluster.fresh_database().await);
    let scene = Scene::start(&db, &[("PREMISE_DATABASE__ACQUIRE_TIMEOUT_SECS", "5")]).await;
    let before = scene.healthy_round(Duration::from_millis(500)).await;

    cluster.stop();
    let down = round(&scene.server, &scene.token, 16, Duration::from_secs(3)).await;
    let (ready, _) = scene.server.get("/readyz", None).await;
    let (_, health) = scene.server.get("/v1/health", Some(&scene.token)).await;
    let mut times = down.refusal_times.clone();
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    let slowest = times.last().copied().unwrap_or_default();
    println!(
        "database stopped: {} accepted, refused {:?}; refusals took median {median:?}, at most \
         {slowest:?}; /readyz {ready}; health {health}",
        down.accepted.len(),
        down.refused
    );
    let logs = errors_in(&scene.server.logs());
    assert_eq!(down.count(500), 0, "never 500: {:?}\n{logs}", down.refused);
    assert!(down.unavailable() > 0, "503/1016 naming the database: {:?}", down.refused);
    assert!(
        median < Duration::from_millis(200),
        "refused at once, not after a timeout: {median:?}"
    );
    assert!(slowest < Duration::from_secs(7), "bounded by the pool's acquire timeout: {slowest:?}");
    assert_eq!(ready, StatusCode::SERVICE_UNAVAILABLE);
    assert_ne!(health["health"]["gateway_status"], "connected", "{health}");

    cluster.restart();
    scene.resumes(Duration::from_secs(30), "database is back").await;
    let after = scene.round_after(Duration::from_secs(1)).await;
    scene.restart_and_check(&[&before, &down, &after]).await;
}

/// Commits that never complete (`synchronous_standby_names` naming a standby that does not
/// exist: Postgres waits for it forever, as when a synchronous standby is lost), with clients
/// giving up after 3 s as an operator's did: each request is answered within the commit bound,
/// 503/1016 naming the stall and never an id; `/readyz` fails and `/v1/health` says why; the
/// server's connections stay within its pool; once commits complete again acceptance resumes
/// by itself and nothing acknowledged is lost.
#[tokio::test]
async fn stalled_commits_answer_503_within_the_bound_and_stay_within_the_pool() {
    let cluster = Cluster::start(&ClusterOptions { durable: true, ..ClusterOptions::default() });
    let db = TestDb::at(&cluster.fresh_database().await);
    let _log = ShownOnFailure(|| cluster.log());
    let scene = Scene::start(&db, &[("PREMISE_DATABASE__COMMIT_TIMEOUT_MS", "1500")]).await;
    let before = scene.healthy_round(Duration::from_millis(500)).await;

    let admin = TestDb::at(cluster.admin_url());
    let standby = |names: &str| format!("ALTER SYSTEM SET synchronous_standby_names = '{names}'");
    admin.execute(&standby("ghost")).await;
    admin.execute("SELECT pg_reload_conf()").await;
    let patience = Duration::from_secs(3);
    let stalled =
        round_giving_up(&scene.server, &scene.token, 16, Duration::from_secs(6), patience);
    let stalled = stalled.await;
    let (ready, _) = scene.server.get("/readyz", None).await;
    let (_, health) = scene.server.get("/v1/health", Some(&scene.token)).await;
    let connections = admin
        .scalar(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}'",
            db.url.rsplit('/').next().unwrap()
        ))
        .await;
    let slowest = stalled.refusal_times.iter().max().copied().unwrap_or_default();
    println!(
        "commits stalled: {} accepted, refused {:?}, the slowest answer in {slowest:?}; /readyz \
         {ready}; health {health}; {connections} connections to the database",
        stalled.accepted.len(),
        stalled.refused
    );
    let logs = errors_in(&scene.server.logs());
    assert_eq!(stalled.count(0), 0, "every request answered in time: {:?}", stalled.refused);
    assert_eq!(stalled.count(500), 0, "never 500: {:?}\n{logs}", stalled.refused);
    assert!(stalled.unavailable() > 0, "503/1016 naming the database: {:?}", stalled.refused);
    assert_eq!(ready, StatusCode::SERVICE_UNAVAILABLE, "/readyz fails while commits stall");
    assert_ne!(health["health"]["gateway_status"], "connected", "{health}");
    assert!(health.to_string().contains("does not confirm commits"), "{health}");
    // The pool (10) and the prober's one attempt to connect.
    assert!(connections <= 11, "{connections} connections: more than the pool");

    admin.execute("ALTER SYSTEM RESET synchronous_standby_names").await;
    admin.execute("SELECT pg_reload_conf()").await;
    scene.resumes(Duration::from_secs(30), "commits complete again").await;
    let after = scene.round_after(Duration::from_secs(1)).await;
    scene.restart_and_check(&[&before, &stalled, &after]).await;
}
