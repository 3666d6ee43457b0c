//! Deployment options: the API under a path prefix behind a reverse proxy, and HTTPS served
//! directly from certificate files.

use std::time::Duration;

use crate::support;
use crate::support::{Backend, Server, TestDb, assert_error, premise};
use reqwest::StatusCode;

#[tokio::test]
async fn the_api_answers_under_a_path_prefix() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut server = Server::start_with(&db, &[("PREMISE_SERVER__PATH_PREFIX", "/whatsapp")]).await;
    let root = server.base.clone();
    server.base = format!("{root}/whatsapp");

    let token = server.admin_token().await;
    let (status, id, body) = server.send_text(&token, "15550001111", "under a prefix").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(id.is_some());
    let (status, body) = server.get("/v1/health", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = server.get("/v1/messages/", Some(&token)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "a known path, trailing slash and all");
    let resp = server.http.get(server.url("/metrics")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert!(text.contains("route=\"/whatsapp/v1/messages\""), "{text}");

    // Outside the prefix only the probes answer.
    let (status, body) =
        support::send(server.http.get(format!("{root}/v1/health")).bearer_auth(&token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, 1006, "/v1/health");
    for probe in ["/readyz", "/healthz", "/whatsapp/readyz"] {
        let resp = server.http.get(format!("{root}{probe}")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{probe}");
    }
}

#[tokio::test]
async fn a_bad_prefix_or_half_a_tls_pair_stops_the_server() {
    let db = TestDb::new(Backend::Sqlite).await;
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("PREMISE_SERVER__PATH_PREFIX", "whatsapp")], "server.path_prefix"),
        (&[("PREMISE_SERVER__PATH_PREFIX", "/whatsapp/")], "server.path_prefix"),
        (&[("PREMISE_SERVER__TLS_CERT", "/etc/hostname")], "server.tls_cert"),
        (
            &[
                ("PREMISE_SERVER__TLS_CERT", "/no/cert.pem"),
                ("PREMISE_SERVER__TLS_KEY", "/no/key.pem"),
            ],
            "server.tls_cert",
        ),
    ];
    for (env, setting) in cases {
        let out = premise()
            .args(["serve", "--database-url", &db.url, "--listen", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && text.contains(setting), "{env:?}: {text}");
    }
}

#[tokio::test]
async fn https_with_certificate_files() {
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = premise_testkit::TempDir::new("premise-tls");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.key_pair.serialize_pem()).unwrap();

    let mut server = Server::start_with(
        &db,
        &[
            ("PREMISE_SERVER__TLS_CERT", cert_file.to_str().unwrap()),
            ("PREMISE_SERVER__TLS_KEY", key_file.to_str().unwrap()),
        ],
    )
    .await;
    let addr: std::net::SocketAddr =
        server.base.strip_prefix("https://").expect("served over https").parse().unwrap();
    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    assert!(plain.get(format!("http://{addr}/healthz")).send().await.is_err());
    // An untrusting client refuses the self-signed certificate.
    assert!(plain.get(format!("https://localhost:{}/healthz", addr.port())).send().await.is_err());

    server.http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", addr)
        .https_only(true)
        .build()
        .unwrap();
    server.base = format!("https://localhost:{}", addr.port());
    let token = server.admin_token().await;
    let (status, _, body) = server.send_text(&token, "15550002222", "over TLS").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server.get("/v1/health", Some(&token)).await;
    assert_eq!((status, &body["health"]["gateway_status"]), (StatusCode::OK, &"connected".into()));
}

/// SIGTERM: `/readyz` fails at once while requests are still served for the drain delay, then
/// the process hands its shard back and exits well within the shutdown timeout.
#[tokio::test]
async fn sigterm_fails_readiness_first_then_drains_and_exits() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut server = Server::start_with(
        &db,
        &[
            ("PREMISE_SERVER__DRAIN_DELAY_MS", "1500"),
            ("PREMISE_SERVER__SHUTDOWN_TIMEOUT_SECS", "5"),
        ],
    )
    .await;
    let token = server.admin_token().await;
    assert_eq!(server.get("/readyz", None).await.0, StatusCode::OK);
    let started = std::time::Instant::now();
    server.sigterm();
    let mut not_ready = None;
    while started.elapsed() < Duration::from_millis(1000) {
        if server.get("/readyz", None).await.0 == StatusCode::SERVICE_UNAVAILABLE {
            not_ready = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let not_ready = not_ready.expect("/readyz kept answering 200 after SIGTERM");
    // Still serving while the load balancer moves away.
    assert_eq!(server.get("/healthz", None).await.0, StatusCode::OK);
    let (status, _, body) = server.send_text(&token, "15550003333", "during the drain").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, logs) = tokio::task::spawn_blocking(move || {
        (server.wait_exit(Duration::from_secs(10)), server.logs())
    })
    .await
    .unwrap();
    let exited = started.elapsed();
    assert!(status.success(), "{logs}");
    assert!(exited >= Duration::from_millis(1500), "exited before the drain delay: {exited:?}");
    assert!(exited < Duration::from_secs(8), "took {exited:?}");
    assert!(logs.contains("released the shard"), "{logs}");
    eprintln!("drain: /readyz failed {not_ready:?} after SIGTERM; exited after {exited:?}");
}
