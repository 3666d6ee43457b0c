//! Logins under hostile load: a burst of password checks costs time, not memory (each is an
//! Argon2id hash of 19 MiB), and the failed-login limit holds however many attempts arrive at
//! once. Clients come from many loopback addresses (127.0.0.0/8), as from many machines.

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::support::{ADMIN_PASSWORD, Backend, Server, TestDb};
use reqwest::StatusCode;
use serde_json::Value;

/// A client whose connections come from `127.0.<a>.<b>`.
fn client_from(n: usize) -> reqwest::Client {
    let address = Ipv4Addr::new(127, 0, (n / 250) as u8 + 1, (n % 250) as u8 + 1);
    reqwest::Client::builder().local_address(IpAddr::V4(address)).build().unwrap()
}

/// `attempts` logins at once, attempt `i` from client `i % clients.len()`; the answers by status
/// and On-Premises code.
async fn burst(
    server: &Server,
    clients: &[reqwest::Client],
    attempts: usize,
    password: &str,
) -> BTreeMap<(u16, u64), usize> {
    let url = Arc::new(server.url("/v1/users/login"));
    let start = Arc::new(tokio::sync::Barrier::new(attempts));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..attempts {
        let (client, url, start) = (clients[i % clients.len()].clone(), url.clone(), start.clone());
        let password = password.to_owned();
        tasks.spawn(async move {
            start.wait().await;
            let resp = client.post(url.as_str()).basic_auth("admin", Some(password)).send().await;
            let resp = resp.expect("the server answers");
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (status, body["errors"][0]["code"].as_u64().unwrap_or(0))
        });
    }
    let mut answers = BTreeMap::new();
    while let Some(answer) = tasks.join_next().await {
        *answers.entry(answer.unwrap()).or_default() += 1;
    }
    answers
}

fn mib(bytes: u64) -> u64 {
    bytes / (1024 * 1024)
}

#[tokio::test]
async fn a_burst_of_logins_costs_time_not_memory() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    server.admin_token().await;
    let baseline = server.rss_bytes();

    let clients: Vec<reqwest::Client> = (0..200).map(client_from).collect();
    let wrong = burst(&server, &clients[..150], 150, "not-the-password").await;
    let right = burst(&server, &clients, 1_000, ADMIN_PASSWORD).await;
    let after = server.rss_bytes();
    let again = burst(&server, &clients, 1_000, ADMIN_PASSWORD).await;
    let (peak, after_again) = (server.peak_rss_bytes(), server.rss_bytes());
    println!(
        "150 wrong logins from 150 addresses: {wrong:?}; 1,000 right ones from 200: {right:?}, \
         then again: {again:?}; RSS {} MiB before, {} MiB after, {} MiB after the second burst, \
         peak {} MiB",
        mib(baseline),
        mib(after),
        mib(after_again),
        mib(peak)
    );
    assert_eq!(
        wrong.get(&(401, 1005)).copied().unwrap_or(0) + overloaded(&wrong),
        150,
        "{wrong:?}"
    );
    assert_eq!(right.get(&(200, 0)).copied().unwrap_or(0) + overloaded(&right), 1_000, "{right:?}");
    assert!(right.contains_key(&(200, 0)), "some get through: {right:?}");
    assert!(peak < 200 * 1024 * 1024, "peak RSS {} MiB", mib(peak));
    // What stays is the hashes' reused buffers (19 MiB per core) and the connections' own: a
    // second burst adds nothing.
    let cores = std::thread::available_parallelism().map_or(2, usize::from) as u64;
    assert!(
        after < baseline + cores * 19 * 1024 * 1024 + 16 * 1024 * 1024,
        "memory back near its baseline: {} MiB after, {} MiB before",
        mib(after),
        mib(baseline)
    );
    assert!(after_again < after + 8 * 1024 * 1024, "{} MiB, then {}", mib(after), mib(after_again));
}

/// Answers refused for the burst's size: 503 with 1016.
fn overloaded(answers: &BTreeMap<(u16, u64), usize>) -> usize {
    answers.get(&(503, 1016)).copied().unwrap_or(0)
}

#[tokio::test]
async fn the_failed_login_limit_holds_under_a_concurrent_burst() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start_with(&db, &[("PREMISE_AUTH__MAX_FAILED_LOGINS", "10")]).await;
    server.admin_token().await;
    let one = [client_from(7)];
    let answers = burst(&server, &one, 200, "not-the-password").await;
    println!("200 wrong logins at once from one address: {answers:?}");
    let checked = answers.get(&(401, 1005)).copied().unwrap_or(0);
    assert!(checked <= 10, "at most max_failed_logins checked: {answers:?}");
    assert_eq!(checked + answers.get(&(429, 1015)).copied().unwrap_or(0), 200, "{answers:?}");
    let (status, _) = server.login("admin", ADMIN_PASSWORD, None).await;
    assert_eq!(status, StatusCode::OK, "another address is not blocked");
}
