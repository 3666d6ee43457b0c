//! What a new user meets first, following the README: its curl session runs top to bottom; the
//! binary's help reads cleanly; a mistyped database URL, an unreachable Postgres or a port in
//! use say what is wrong and what to do, before anything is created; the default listener is
//! this machine only; a webhook URL that cannot be requested is refused by name.

use std::process::Stdio;
use std::time::Duration;

use crate::support::pipeline::{Receiver, wait_for};
use crate::support::{Backend, Server, TestDb, assert_error, premise};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// `premise ARGS` run to its end: (success, standard output and error together).
fn run(args: &[&str], dir: &std::path::Path) -> (bool, String) {
    let output =
        premise().args(args).current_dir(dir).stdin(Stdio::null()).output().expect("run premise");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The README's first session, in order: first login changing the password, a second account,
/// the webhook and `sent` switched on, a message to the sandbox's test number that is always
/// delivered and read, and the logout last.
#[tokio::test]
async fn the_readmes_first_session_runs_top_to_bottom() {
    let db = TestDb::new(Backend::Sqlite).await;
    // The sandbox as a fresh install has it: the 24-hour window on.
    let server =
        Server::start_with(&db, &[("PREMISE_SANDBOX__CUSTOMER_SERVICE_WINDOW", "true")]).await;
    let token = server.admin_token().await;
    let (status, body) = server
        .send_json(
            Method::POST,
            "/v1/users",
            Some(&token),
            json!({"username": "integration", "password": "Integr4tion!"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let receiver = Receiver::start().await;
    let (status, body) = server
        .send_json(
            Method::PATCH,
            "/v1/settings/application",
            Some(&token),
            json!({"webhooks": {"url": receiver.url(), "message": {"sent": true}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, settings) = server.get("/v1/settings/application", Some(&token)).await;
    let application = &settings["settings"]["application"];
    assert_eq!(application["sent_status"], true, "one truth: {application}");
    assert_eq!(application["webhooks"]["message"]["sent"], true);
    let (status, id, body) =
        server.send_text(&token, "16505550100", "Your order has shipped").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = id.unwrap();
    wait_for(Duration::from_secs(20), "sent, delivered, read", || {
        receiver.by_message().get(&id).is_some_and(|s| s.len() >= 3)
    })
    .await;
    assert_eq!(receiver.by_message()[&id], ["sent", "delivered", "read"]);
    let (status, _) =
        server.send_json(Method::POST, "/v1/users/logout", Some(&token), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server.get("/v1/health", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked by the logout");
}

/// A webhook URL the client could not request is refused when it is set, naming the field.
#[tokio::test]
async fn a_webhook_url_that_cannot_be_requested_is_refused() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;
    for url in ["http://127.0.0.1:9,", "http://exa mple.com/", "http://:80/"] {
        let (status, body) = server
            .send_json(
                Method::PATCH,
                "/v1/settings/application",
                Some(&token),
                json!({"webhooks": {"url": url}}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert_error(&body, 1009, "webhooks.url");
    }
}

/// Mistyped database URLs and an unreachable Postgres say what is wrong and what to do, once,
/// and create nothing; so does a port in use, before the database is touched.
#[tokio::test]
async fn start_up_mistakes_are_explained_before_anything_is_created() {
    let dir = premise_testkit::TempDir::new("premise-first-use");
    let cases = [
        ("sqlite:/nonexistent-premise/dir/x.db", "write sqlite://PATH, with two slashes"),
        ("sqlite:///nonexistent-premise/dir/x.db", "does not exist"),
        ("sqlite:///tmp", "is a directory; name the database file in it"),
        ("postgres://u:p@127.0.0.1:1/db", "cannot reach the Postgres server at 127.0.0.1:1"),
    ];
    for (url, says) in cases {
        let (ok, text) =
            run(&["serve", "--listen", "127.0.0.1:0", "--database-url", url], dir.path());
        assert!(!ok, "{url} started");
        assert!(text.contains(says), "{url}: {text}");
        assert_eq!(text.matches("premise stopped with an error").count(), 1, "said once: {text}");
        assert!(!text.contains(":p@"), "the password is not shown: {text}");
    }
    assert!(!std::path::Path::new("/nonexistent-premise").exists(), "no directories made");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let db = dir.path().join("fresh");
    let url = format!("sqlite://{}/premise.db", db.display());
    let (ok, text) = run(&["serve", "--listen", &addr, "--database-url", &url], dir.path());
    assert!(!ok);
    assert!(text.contains(&format!("server.listen: cannot listen on {addr}")), "{text}");
    assert!(!db.exists(), "the database was not created: {text}");
}

/// `--help` reads cleanly: no dangling `=` after an unset variable, `--listen` only where it
/// applies, every option described; the default listener is this machine only.
#[test]
fn the_help_reads_cleanly_and_the_default_listener_is_local() {
    let dir = premise_testkit::TempDir::new("premise-help");
    let (ok, top) = run(&["--help"], dir.path());
    assert!(ok, "{top}");
    assert!(!top.contains("=]"), "a dangling '=': {top}");
    assert!(top.contains("127.0.0.1:8080"), "{top}");
    let (_, create) = run(&["users", "create", "--help"], dir.path());
    assert!(!create.contains("--listen"), "{create}");
    for option in ["--username <USERNAME>  ", "--password <PASSWORD>  "] {
        let line = create.lines().find(|l| l.contains(option)).unwrap_or_default();
        assert!(line.trim().len() > option.trim().len() + 10, "undescribed: {create}");
    }
    let (_, serve) = run(&["serve", "--help"], dir.path());
    assert!(serve.contains("--listen"), "{serve}");

    let config = premise::config::Config::load(None, &premise::config::Overrides::default())
        .expect("the default configuration");
    assert_eq!(config.server.listen, "127.0.0.1:8080");
}
