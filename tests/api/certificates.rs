//! Certificates as On-Premises took them: a PEM bundle uploaded to one replica is what every
//! replica serves HTTPS with, without a restart (and plain HTTP keeps working on the same port
//! when no certificate files are configured); a CA uploaded for webhooks lets the dispatcher
//! deliver to an `https` receiver whose certificate that private CA signed.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support;
use crate::support::pipeline::{Receiver, ask_until};
use crate::support::{Backend, Server, TestDb, assert_error};
use premise_testkit::TempDir;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// A private CA and a certificate it signed for `localhost` and 127.0.0.1: (CA PEM, leaf PEM,
/// leaf key PEM).
fn private_ca() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

/// A client that trusts only `ca`, reaching `localhost` at `addr`.
fn trusting(ca: &str, addr: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn addr_of(server: &Server) -> SocketAddr {
    server.base.strip_prefix("http://").unwrap().parse().unwrap()
}

async fn post_pem(server: &Server, token: &str, path: &str, pem: String) -> (StatusCode, Value) {
    let request = server
        .http
        .post(server.url(path))
        .bearer_auth(token)
        .header("content-type", "text/plain")
        .body(pem);
    support::send(request).await
}

async fn https_status(client: &reqwest::Client, addr: SocketAddr) -> Option<StatusCode> {
    let url = format!("https://localhost:{}/healthz", addr.port());
    client.get(url).send().await.ok().map(|r| r.status())
}

#[tokio::test]
async fn an_uploaded_certificate_is_served_by_every_replica_without_a_restart() {
    let db = TestDb::new(Backend::Sqlite).await;
    let one = Server::start(&db).await;
    let two = Server::start(&db).await;
    let token = one.admin_token().await;
    let (ca, leaf, key) = private_ca();
    let client = |server: &Server| trusting(&ca, addr_of(server));
    assert_eq!(https_status(&client(&one), addr_of(&one)).await, None, "no HTTPS yet");

    // Refusals first: each names what is wrong, and nothing is installed.
    let (other_ca, other_leaf, other_key) = private_ca();
    for (bundle, why) in [
        (format!("{key}{leaf}"), "no CA certificate"),
        (format!("{leaf}{ca}"), "no private key"),
        (format!("{other_key}{leaf}{ca}"), "does not go with"),
        ("garbage".to_owned(), "certificate"),
    ] {
        let (status, body) = post_pem(&one, &token, "/v1/certificates/external", bundle).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_error(&body, 1009, why);
    }
    let (status, _) = one.get("/v1/certificates/external/ca", Some(&token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) =
        post_pem(&one, &token, "/v1/certificates/external", format!("{key}{leaf}{ca}")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(https_status(&client(&one), addr_of(&one)).await, Some(StatusCode::OK));
    assert_eq!(one.get("/healthz", None).await.0, StatusCode::OK, "plain HTTP still served");
    let two_client = client(&two);
    ask_until(
        WAIT,
        "the other replica serving it",
        || https_status(&two_client, addr_of(&two)),
        |s| *s == Some(StatusCode::OK),
    )
    .await;
    let served = one
        .http
        .get(one.url("/v1/certificates/external/ca"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    let squash = |pem: &str| pem.split_whitespace().collect::<String>();
    assert_eq!(squash(&served.text().await.unwrap()), squash(&ca));

    // A new bundle replaces it everywhere.
    let (status, _) = post_pem(
        &two,
        &token,
        "/v1/certificates/external",
        format!("{other_leaf}{other_key}{other_ca}"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let new_client = trusting(&other_ca, addr_of(&one));
    ask_until(
        WAIT,
        "the first replica serving the new one",
        || https_status(&new_client, addr_of(&one)),
        |s| *s == Some(StatusCode::OK),
    )
    .await;
    assert_eq!(https_status(&client(&one), addr_of(&one)).await, None, "the old one is gone");

    let user = one.user_token(&token, "integration", "Integr4tion!pass").await;
    let (status, _) =
        post_pem(&one, &user, "/v1/certificates/external", format!("{key}{leaf}{ca}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(one.get("/v1/certificates/external/ca", Some(&user)).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_reach_a_receiver_signed_by_an_uploaded_ca() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;
    let (ca, leaf, key) = private_ca();
    let dir = TempDir::new("premise-webhook-tls");
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, &leaf).unwrap();
    std::fs::write(&key_file, &key).unwrap();
    let receiver = Receiver::start_tls(&cert_file, &key_file).await;
    server.use_webhook(&token, &receiver.url()).await;
    server
        .patch_settings(
            &token,
            json!({"callback_backoff_delay_ms": 200, "max_callback_backoff_delay_ms": 400}),
        )
        .await;

    // Without the CA the receiver's certificate is not trusted: nothing is delivered.
    let (status, _, body) = server.send_text(&token, "16315550001", "over TLS").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let failures = || async {
        let metrics =
            server.http.get(server.url("/metrics")).bearer_auth(&token).send().await.unwrap();
        let text = metrics.text().await.unwrap();
        text.lines()
            .find(|l| l.starts_with("premise_callback_deliveries_total{result=\"failure\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    ask_until(WAIT, "a failed delivery to the untrusted receiver", failures, |n| *n >= 1.0).await;
    assert!(receiver.hits().is_empty());

    // Bad input is refused; the CA is taken; the retry is delivered.
    for (pem, why) in
        [("not a certificate".to_owned(), "certificate"), (String::new(), "certificate")]
    {
        let (status, body) = post_pem(&server, &token, "/v1/certificates/webhooks/ca", pem).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["errors"][0]["details"].as_str().unwrap().contains(why), "{body}");
    }
    let (status, body) =
        post_pem(&server, &token, "/v1/certificates/webhooks/ca", ca.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    ask_until(
        WAIT,
        "the status delivered over TLS",
        || async { receiver.statuses().len() },
        |n| *n >= 1,
    )
    .await;
    let served = server
        .http
        .get(server.url("/v1/certificates/webhooks/ca"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(served.text().await.unwrap(), ca);

    let user = server.user_token(&token, "integration", "Integr4tion!pass").await;
    let request = server.http.delete(server.url("/v1/certificates/webhooks/ca")).bearer_auth(&user);
    assert_eq!(support::send(request).await.0, StatusCode::FORBIDDEN);
    let request = server
        .http
        .request(Method::DELETE, server.url("/v1/certificates/webhooks/ca"))
        .bearer_auth(&token);
    assert_eq!(support::send(request).await.0, StatusCode::OK);
    assert_eq!(
        server.get("/v1/certificates/webhooks/ca", Some(&token)).await.0,
        StatusCode::NOT_FOUND
    );
}
