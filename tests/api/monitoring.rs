//! Monitoring: `/metrics` parsed as Prometheus text moves as messages flow; its JSON form and
//! `/v1/stats/*` have the On-Premises shapes; the endpoints want a token or the API key, unless
//! served on their own listener.

use std::time::Duration;

use crate::support::pipeline::{Receiver, ask_until};
use crate::support::prometheus::{Scrape, parse};
use crate::support::{Backend, Server, TestDb};
use reqwest::StatusCode;

const API_KEY: &str = "monitoring-key-0123";

async fn scrape(server: &Server, path: &str) -> Scrape {
    let resp = server
        .http
        .get(server.url(path))
        .header("authorization", format!("Apikey {API_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = resp.text().await.unwrap();
    parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[tokio::test]
async fn metrics_move_as_messages_flow() {
    let db = TestDb::new(Backend::Postgres).await;
    let server = Server::start_with(
        &db,
        &[
            ("PREMISE_API_KEY", API_KEY),
            ("PREMISE_METRICS__QUEUE_REFRESH_MS", "100"),
            ("PREMISE_SANDBOX__ACK_LATENCY_MS", "5"),
            ("PREMISE_SANDBOX__DELIVERED_AFTER_MS", "10"),
            ("PREMISE_SANDBOX__READ_AFTER_MS", "10"),
            ("PREMISE_METRICS__LISTEN", "127.0.0.1:0"),
        ],
    )
    .await;
    // Without credentials: 401, as /v1/health.
    let resp = server.http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let bad = server
        .http
        .get(server.url("/metrics"))
        .header("authorization", "Apikey wrong-key-wrong-key")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);

    let token = server.admin_token().await;
    let before = scrape(&server, "/metrics").await;
    assert_eq!(before.value("premise_messages_accepted_total", &[]), 0.0);
    let receiver = Receiver::start().await;
    server.use_webhook(&token, &receiver.url()).await;
    for n in 0..20 {
        let (status, _, body) = server.send_text(&token, &format!("1555000{}", n % 4), "hi").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // A token works as well as the key.
    let resp = server.http.get(server.url("/metrics")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let settled = |after: &_| {
        let after: &Scrape = after;
        after.value("premise_messages_acknowledged_total", &[]) >= 20.0
            && after.value("premise_callbacks_delivered_total", &[]) >= 60.0
            && after.value("premise_queue_depth", &[("shard", "0")]) == 0.0
            && after.value("premise_callback_backlog", &[("shard", "0")]) == 0.0
    };
    let after = ask_until(
        Duration::from_secs(30),
        "metrics to settle",
        || scrape(&server, "/metrics"),
        settled,
    )
    .await;
    assert_eq!(after.value("premise_messages_accepted_total", &[]), 20.0);
    assert_eq!(after.value("premise_messages_acknowledged_total", &[]), 20.0);
    assert_eq!(after.value("premise_messages_failed_total", &[]), 0.0);
    assert_eq!(after.value("premise_upstream_send_duration_seconds_count", &[]), 20.0);
    assert!(after.value("premise_upstream_send_duration_seconds_sum", &[]) >= 20.0 * 0.005);
    assert_eq!(
        after.value(
            "premise_http_requests_total",
            &[("method", "POST"), ("route", "/v1/messages"), ("status", "201")]
        ),
        20.0
    );
    assert_eq!(
        after.value(
            "premise_http_request_duration_seconds_count",
            &[("method", "POST"), ("route", "/v1/messages")]
        ),
        20.0
    );
    assert_eq!(
        before.value_or_zero(
            "premise_http_requests_total",
            &[("route", "/metrics"), ("status", "401")]
        ),
        2.0,
        "refused scrapes are counted"
    );
    assert_eq!(after.value("premise_shard_leases_held", &[]), 1.0);
    assert_eq!(after.value("premise_sends_in_flight", &[]), 0.0);
    assert_eq!(after.value("premise_queue_oldest_age_seconds", &[("shard", "0")]), 0.0);
    assert!(after.value("premise_callback_deliveries_total", &[("result", "success")]) >= 1.0);
    assert!(after.value("premise_callback_delivery_duration_seconds_count", &[]) >= 1.0);
    assert_eq!(after.value("premise_build_info", &[]), 1.0);

    // The On-Premises JSON form of the same.
    let (status, body) = server.get("/metrics?format=json", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let accepted = &body["metrics"]["premise_messages_accepted_total"];
    assert_eq!(accepted["type"], "counter", "{body}");
    assert!(accepted["help"].as_str().is_some_and(|h| !h.is_empty()));
    assert_eq!(accepted["data"][0]["value"], 20);
    assert_eq!(body["metrics"]["premise_queue_depth"]["data"][0]["labels"]["shard"], "0");
    let (status, _) = server.get("/metrics?format=xml", Some(&token)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, body) = server.get("/v1/stats/app", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let queue = &body["stats"]["app"]["callback_queue_size"];
    assert_eq!(
        (queue["type"].as_str(), queue["data"][0]["value"].as_i64()),
        (Some("gauge"), Some(0))
    );
    assert_eq!(body["stats"]["app"]["messages_sent"]["data"][0]["value"], 20);
    assert_eq!(body["meta"]["api_status"], "stable");
    let (status, body) = server.get("/v1/stats/db", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stats"]["db"]["db_ready"]["data"][0]["labels"]["backend"], "postgres");
    let stats = scrape(&server, "/v1/stats/app?format=prometheus").await;
    assert_eq!(stats.value("messages_sent", &[]), 20.0);

    // The separate listener serves /metrics without credentials.
    let logs = server.logs();
    let open = logs
        .lines()
        .find_map(|l| l.split("metrics on ").nth(1))
        .map(|u| u.split_whitespace().next().unwrap().to_owned())
        .expect("metrics listener address in the logs");
    let text = server.http.get(&open).send().await.unwrap().text().await.unwrap();
    let open = parse(&text).unwrap();
    assert_eq!(open.value("premise_messages_accepted_total", &[]), 20.0);
}
