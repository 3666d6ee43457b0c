//! Several server processes on one Postgres behave as one server: a login on one is valid on
//! all, a logout on one is honoured by all, and the bad-login limit counts across all.

use crate::support;
use crate::support::{ADMIN_PASSWORD, Backend, Server, TestDb, assert_error, token_of};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn tokens_and_revocations_are_shared() {
    let db = TestDb::new(Backend::Postgres).await;
    let a = Server::start(&db).await;
    let b = Server::start(&db).await;

    // The first-login change on one replica is seen by the other.
    let token = a.admin_token().await;
    assert_eq!(b.login("admin", "secret", None).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = b.login("admin", ADMIN_PASSWORD, None).await;
    assert_eq!(status, StatusCode::OK);
    let token_b = token_of(&body);

    // Both replicas signed with the one generated key.
    assert_eq!(b.get("/v1/users/admin", Some(&token)).await.0, StatusCode::OK);
    assert_eq!(a.get("/v1/users/admin", Some(&token_b)).await.0, StatusCode::OK);

    // Accounts created through one replica log in through the other.
    let (status, _) = a
        .send_json(
            Method::POST,
            "/v1/users",
            Some(&token),
            json!({"username": "alice", "password": "Alice123!"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = b.login("alice", "Alice123!", None).await;
    assert_eq!(status, StatusCode::OK);
    let alice = token_of(&body);

    // Logout through A revokes on B; deleting through B revokes on A.
    let resp = a.http.post(a.url("/v1/users/logout")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, body) = b.get("/v1/users/admin", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, 1005, "Invalid credentials.");
    let text = json!({"to": "16315551234", "type": "text", "text": {"body": "hi"}});
    let (status, _) = b.send_json(Method::POST, "/v1/messages", Some(&token), text).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "nor is a message sent with it stored");
    assert_eq!(b.get("/v1/users/admin", Some(&token_b)).await.0, StatusCode::OK);

    assert_eq!(a.get("/v1/users/alice", Some(&alice)).await.0, StatusCode::OK);
    let resp = b.http.delete(b.url("/v1/users/alice")).bearer_auth(&token_b).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(a.get("/v1/users/alice", Some(&alice)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_bad_login_limit_holds_across_replicas() {
    let db = TestDb::new(Backend::Postgres).await;
    let env = [("PREMISE_AUTH__MAX_FAILED_LOGINS", "4")];
    let a = Server::start_with(&db, &env).await;
    let b = Server::start_with(&db, &env).await;
    a.admin_token().await;
    for server in [&a, &b, &a, &b] {
        assert_eq!(server.login("admin", "wrong", None).await.0, StatusCode::UNAUTHORIZED);
    }
    for server in [&a, &b] {
        let (status, body) = server.login("admin", ADMIN_PASSWORD, None).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_error(&body, 1015, "bad login attempts");
    }
}

/// Behind a load balancer every request comes from the balancer's address; with
/// `trust_forwarded_for` the limit is per real client.
#[tokio::test]
async fn the_limit_is_per_forwarded_client_when_trusted() {
    let db = TestDb::new(Backend::Sqlite).await;
    let env =
        [("PREMISE_AUTH__MAX_FAILED_LOGINS", "2"), ("PREMISE_SERVER__TRUST_FORWARDED_FOR", "true")];
    let server = Server::start_with(&db, &env).await;
    server.admin_token().await;
    let login_from = |client: &'static str, password: &'static str| {
        let req = server
            .http
            .post(server.url("/v1/users/login"))
            .basic_auth("admin", Some(password))
            .header("x-forwarded-for", format!("{client}, 10.0.0.1"));
        support::send(req)
    };
    for _ in 0..2 {
        assert_eq!(login_from("203.0.113.7", "wrong").await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login_from("203.0.113.7", ADMIN_PASSWORD).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        login_from("198.51.100.2", ADMIN_PASSWORD).await.0,
        StatusCode::OK,
        "another client is not blocked"
    );
}

/// 50 PATCHes of 50 different fields, at once, half through each replica: every field lands
/// (each PATCH is a compare-and-set on the stored document, redone when another came first).
#[tokio::test]
async fn concurrent_settings_patches_all_land() {
    let db = TestDb::new(Backend::Postgres).await;
    let a = Server::start(&db).await;
    let b = Server::start(&db).await;
    let token = a.admin_token().await;
    let mut tasks = Vec::new();
    for n in 0..50 {
        let server = if n % 2 == 0 { &a } else { &b };
        let (http, url, token) =
            (server.http.clone(), server.url("/v1/settings/application"), token.clone());
        tasks.push(tokio::spawn(async move {
            let patch = if n == 0 {
                json!({"webhooks": {"max_concurrent_requests": 12}})
            } else {
                json!({ format!("field_{n}"): n })
            };
            support::send(http.patch(url).bearer_auth(token).json(&patch)).await
        }));
    }
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, body) = b.get("/v1/settings/application", Some(&token)).await;
    let settings = &body["settings"]["application"];
    for n in 1..50 {
        assert_eq!(settings[format!("field_{n}")], n, "field_{n} lost: {settings}");
    }
    assert_eq!(settings["webhooks"]["max_concurrent_requests"], 12, "{settings}");
}

/// With several replicas, `/v1/stats/app` and `/v1/stats/db` answer with every live one's
/// figures keyed by node, as On-Premises multiconnect did; Prometheus text labels each sample
/// with its node.
#[tokio::test]
async fn stats_show_every_replica() {
    let db = TestDb::new(Backend::Postgres).await;
    let a = Server::start(&db).await;
    let b = Server::start(&db).await;
    let token = a.admin_token().await;
    let (status, _) = a
        .send_json(
            Method::POST,
            "/v1/account/shards",
            Some(&token),
            json!({"cc": "1", "phone_number": "5550000", "shards": 4}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for n in 0..40 {
        let (status, _, body) = a.send_text(&token, &format!("1631555{n:04}"), "hi").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let sent_by_node = |body: &serde_json::Value| -> Vec<(String, i64)> {
        body["stats"]["app"]
            .as_object()
            .map(|nodes| {
                nodes
                    .iter()
                    .filter_map(|(node, app)| {
                        Some((node.clone(), app["messages_sent"]["data"][0]["value"].as_i64()?))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let body = support::pipeline::ask_until(
        std::time::Duration::from_secs(20),
        "both replicas' figures adding up to 40 sent",
        || async { b.get("/v1/stats/app", Some(&token)).await.1 },
        |body| {
            let nodes = sent_by_node(body);
            nodes.len() == 2 && nodes.iter().map(|(_, n)| n).sum::<i64>() == 40
        },
    )
    .await;
    let nodes: Vec<String> = sent_by_node(&body).into_iter().map(|(node, _)| node).collect();
    let (_, health) = b.get("/v1/health", Some(&token)).await;
    let mut named: Vec<String> = health["health"].as_object().unwrap().keys().cloned().collect();
    named.sort();
    assert_eq!(nodes, named, "the same node names as /v1/health");

    let (status, body) = a.get("/v1/stats/db", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    for node in &nodes {
        let ready = &body["stats"]["db"][node]["db_ready"]["data"][0];
        assert_eq!(
            (ready["value"].as_i64(), ready["labels"]["backend"].as_str()),
            (Some(1), Some("postgres")),
            "{body}"
        );
    }
    let sent_in_text = |text: &str| -> f64 {
        let scrape = support::prometheus::parse(text).unwrap();
        nodes.iter().map(|node| scrape.value("messages_sent", &[("node", node.as_str())])).sum()
    };
    support::pipeline::ask_until(
        std::time::Duration::from_secs(20),
        "40 sent in the Prometheus form, per node",
        || async {
            let response = a
                .http
                .get(a.url("/v1/stats/app?format=prometheus"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            response.text().await.unwrap()
        },
        |text| sent_in_text(text) == 40.0,
    )
    .await;
}
