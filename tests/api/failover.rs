//! Crashes and replicas on one Postgres: nothing accepted is lost, each message reaches the
//! sandbox once (a crash may repeat only what was in flight), per-recipient order holds, and a
//! dead replica's shards move within the lease time.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::pipeline::{
    LEASE_RENEW_MS, LEASE_TTL_MS, Receiver, Sent, assert_order, journal, journal_path, replica_env,
    wait_for,
};
use crate::support::{Backend, Server, TestDb};
use reqwest::StatusCode;
use serde_json::json;

fn env<'a>(node: &'a str, journal: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut env = replica_env(node, journal);
    env.extend([
        ("PREMISE_SANDBOX__DELIVERED_AFTER_MS", "20"),
        ("PREMISE_SANDBOX__READ_AFTER_MS", "20"),
    ]);
    env
}

/// Clients, one per recipient, sending until `stop` or `per_recipient`, through the servers
/// round-robin by recipient. Returns recipient → ids answered 201, in order.
async fn send_until(
    bases: &[String],
    token: &str,
    recipients: std::ops::Range<usize>,
    per_recipient: usize,
    accepted_count: Arc<AtomicUsize>,
) -> HashMap<String, Vec<String>> {
    let http = reqwest::Client::new();
    let mut clients = tokio::task::JoinSet::new();
    for r in recipients {
        let (http, base, token, count) = (
            http.clone(),
            bases[r % bases.len()].clone(),
            token.to_owned(),
            accepted_count.clone(),
        );
        clients.spawn(async move {
            let to = format!("1999000{r:04}");
            let mut ids = Vec::new();
            for n in 0..per_recipient {
                let sent = http
                    .post(format!("{base}/v1/messages"))
                    .bearer_auth(&token)
                    .json(&json!({"to": to, "text": {"body": format!("#{n}")}}))
                    .send()
                    .await;
                let Ok(resp) = sent else { break }; // the server died under us
                if resp.status() != StatusCode::CREATED {
                    break;
                }
                let Ok(body) = resp.json::<serde_json::Value>().await else { break };
                ids.push(body["messages"][0]["id"].as_str().unwrap().to_owned());
                count.fetch_add(1, Ordering::Relaxed);
            }
            (to, ids)
        });
    }
    let mut accepted = HashMap::new();
    while let Some(done) = clients.join_next().await {
        let (to, ids) = done.unwrap();
        accepted.insert(to, ids);
    }
    accepted
}

fn counts(sent: &[Sent]) -> HashMap<&str, Vec<&Sent>> {
    let mut map: HashMap<&str, Vec<&Sent>> = HashMap::new();
    for s in sent {
        map.entry(s.id.as_str()).or_default().push(s);
    }
    map
}

#[tokio::test]
async fn kill_9_mid_burst_loses_nothing() {
    let db = TestDb::new(Backend::Postgres).await;
    let dir = premise_testkit::TempDir::new("premise-crash");
    let journal_file = journal_path(dir.path());
    let journal_str = journal_file.to_str().unwrap();
    let mut first_env = env("first", journal_str);
    first_env.push(("PREMISE_SANDBOX__ACK_LATENCY_MS", "20"));
    let mut first = Server::start_with(&db, &first_env).await;
    let token = first.admin_token().await;
    let receiver = Receiver::start().await;
    first.use_webhook(&token, &receiver.url()).await;

    let count = Arc::new(AtomicUsize::new(0));
    let burst = tokio::spawn({
        let (bases, token, count) = (vec![first.base.clone()], token.clone(), count.clone());
        async move { send_until(&bases, &token, 0..20, 100, count).await }
    });
    wait_for(Duration::from_secs(60), "300 accepted messages", || {
        count.load(Ordering::Relaxed) >= 300
    })
    .await;
    first.kill();
    let accepted = burst.await.unwrap();
    let ids: Vec<&String> = accepted.values().flatten().collect();
    let at_kill = journal(&journal_file).len();

    let second = Server::start_with(&db, &env("second", journal_str)).await;
    wait_for(Duration::from_secs(60), "every accepted message in the sandbox", || {
        let sent = journal(&journal_file);
        let seen = counts(&sent);
        ids.iter().all(|id| seen.contains_key(id.as_str()))
    })
    .await;
    wait_for(Duration::from_secs(60), "every accepted message's statuses", || {
        let by_message = receiver.by_message();
        ids.iter().all(|id| by_message.get(*id).is_some_and(|s| s.iter().any(|x| x == "read")))
    })
    .await;

    let sent = journal(&journal_file);
    let duplicates: Vec<_> = counts(&sent).into_iter().filter(|(_, s)| s.len() > 1).collect();
    for (id, sends) in &duplicates {
        let nodes: Vec<&str> = sends.iter().map(|s| s.node.as_str()).collect();
        assert_eq!(
            nodes,
            ["first", "second"],
            "{id}: only a send in flight at the kill may repeat"
        );
    }
    // A recipient has at most one message in flight, so at most one repeat per recipient.
    assert!(
        duplicates.len() <= accepted.len(),
        "{} repeats for {} recipients",
        duplicates.len(),
        accepted.len()
    );
    for (id, _) in &duplicates {
        let recipient =
            accepted.iter().find(|(_, ids)| ids.iter().any(|i| i == id)).map(|(r, _)| r).unwrap();
        let repeats =
            duplicates.iter().filter(|(d, _)| accepted[recipient].iter().any(|i| i == d)).count();
        assert_eq!(repeats, 1, "recipient {recipient} had more than one message in flight");
    }
    assert_order(&sent, &accepted);
    for id in &ids {
        let mut statuses = receiver.by_message()[*id].clone();
        statuses.dedup();
        assert_eq!(statuses, ["sent", "delivered", "read"], "{id}");
    }
    eprintln!(
        "crash test: {} accepted before kill -9, {at_kill} reached the sandbox by then, {} repeated after restart",
        ids.len(),
        duplicates.len()
    );
    drop(second);
}

#[tokio::test]
async fn replicas_share_shards_and_take_over_a_dead_ones() {
    let db = TestDb::new(Backend::Postgres).await;
    let dir = premise_testkit::TempDir::new("premise-replicas");
    let journal_file = journal_path(dir.path());
    let journal_str = journal_file.to_str().unwrap();
    let a = Server::start_with(&db, &env("a", journal_str)).await;
    let mut b = Server::start_with(&db, &env("b", journal_str)).await;
    let mut c = Server::start_with(&db, &env("c", journal_str)).await;
    let token = a.admin_token().await;
    a.set_shards(&token, 4).await;

    // All four shards owned, spread over the three replicas.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let leases = db.live_leases().await;
        let owners: std::collections::HashSet<_> = leases.iter().map(|(_, o)| o.clone()).collect();
        if leases.len() == 4 && owners.len() == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "shards not spread: {leases:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = a.get("/v1/health", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    for node in ["a", "b", "c"] {
        assert_eq!(body["health"][node]["gateway_status"], "connected", "{body}");
    }
    assert_eq!(body["health"]["a"]["role"], "primary_master");
    assert_eq!(body["health"]["b"]["role"], "coreapp");

    let bases = vec![a.base.clone(), b.base.clone(), c.base.clone()];
    let mut accepted = send_until(&bases, &token, 0..30, 20, Arc::default()).await;
    assert_eq!(accepted.values().flatten().count(), 600);
    wait_for(Duration::from_secs(60), "600 sends", || journal(&journal_file).len() >= 600).await;
    let sent = journal(&journal_file);
    assert_eq!(sent.len(), 600, "each message reached the sandbox once");
    let nodes: std::collections::HashSet<_> = sent.iter().map(|s| s.node.clone()).collect();
    assert_eq!(nodes.len(), 3, "every replica sent its shards' messages");

    // kill -9 one replica: its shards move once its leases run out.
    let killed_at = Instant::now();
    c.kill();
    let deadline = killed_at + Duration::from_millis(LEASE_TTL_MS + 4 * LEASE_RENEW_MS + 2000);
    loop {
        let leases = db.live_leases().await;
        if leases.len() == 4 && leases.iter().all(|(_, o)| o != "c") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "shards of the killed replica not taken over: {leases:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let takeover = killed_at.elapsed();
    assert!(
        takeover >= Duration::from_millis(LEASE_TTL_MS / 2),
        "taken over before the lease could have expired"
    );

    // SIGTERM another: it hands its shards back at once instead of letting them expire.
    let stopped_at = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let status = b.terminate(Duration::from_secs(20));
        (status, b)
    })
    .await
    .unwrap();
    assert!(status.0.success());
    let deadline = stopped_at + Duration::from_millis(LEASE_TTL_MS);
    loop {
        let leases = db.live_leases().await;
        if leases.len() == 4 && leases.iter().all(|(_, o)| o == "a") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "shards of the stopped replica not handed over within the lease time: {leases:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let handover = stopped_at.elapsed();
    eprintln!(
        "failover: shards taken over {takeover:?} after kill -9 (lease ttl {LEASE_TTL_MS} ms), {handover:?} after SIGTERM"
    );

    let more = send_until(std::slice::from_ref(&a.base), &token, 0..30, 10, Arc::default()).await;
    for (to, ids) in more {
        accepted.get_mut(&to).unwrap().extend(ids);
    }
    wait_for(Duration::from_secs(60), "900 sends", || journal(&journal_file).len() >= 900).await;
    let sent = journal(&journal_file);
    assert_eq!(counts(&sent).len(), 900);
    assert_order(&sent, &accepted);
}

#[tokio::test]
async fn changing_the_shard_count_keeps_each_recipients_order() {
    let db = TestDb::new(Backend::Postgres).await;
    let dir = premise_testkit::TempDir::new("premise-reshard");
    let journal_file = journal_path(dir.path());
    let journal_str = journal_file.to_str().unwrap();
    let mut slow = env("x", journal_str);
    slow.push(("PREMISE_SANDBOX__ACK_LATENCY_MS", "5"));
    let x = Server::start_with(&db, &slow).await;
    let mut slow_y = env("y", journal_str);
    slow_y.push(("PREMISE_SANDBOX__ACK_LATENCY_MS", "5"));
    let y = Server::start_with(&db, &slow_y).await;
    let token = x.admin_token().await;

    let sending = tokio::spawn({
        let (bases, token) = (vec![x.base.clone(), y.base.clone()], token.clone());
        async move { send_until(&bases, &token, 0..20, 40, Arc::default()).await }
    });
    for shards in [4, 2, 32, 1, 8] {
        tokio::time::sleep(Duration::from_millis(400)).await;
        x.set_shards(&token, shards).await;
    }
    let accepted = sending.await.unwrap();
    assert_eq!(accepted.values().flatten().count(), 800);
    wait_for(Duration::from_secs(90), "800 sends", || journal(&journal_file).len() >= 800).await;
    let sent = journal(&journal_file);
    assert_eq!(sent.len(), 800, "a shard change repeats nothing");
    assert_order(&sent, &accepted);
}
