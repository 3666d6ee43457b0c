//! Operating the binary: configuration errors, secrets kept out of logs, the operator
//! commands, and graceful shutdown.

use std::process::Stdio;
use std::time::Duration;

use crate::support;
use crate::support::{Backend, Server, TestDb, premise, token_of};
use reqwest::StatusCode;

fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = premise().args(args).envs(env.iter().copied()).output().expect("run premise");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test]
async fn bad_settings_stop_the_server_naming_the_setting() {
    let db = TestDb::new(Backend::Sqlite).await;
    let url = db.url.as_str();
    let cases: [(&[(&str, &str)], &str); 8] = [
        (&[("PREMISE_UPSTREAM__KIND", "carrier-pigeon")], "upstream.kind"),
        (&[("PREMISE_LISTEN", "not-an-address")], "server.listen"),
        (&[("PREMISE_AUTH__TOKEN_LIFETIME_SECS", "soon")], "auth.token_lifetime_secs"),
        (&[("PREMISE_AUTH__TOKEN_LIFETIME_SECS", "0")], "auth.token_lifetime_secs"),
        (&[("PREMISE_API_KEY", "short")], "auth.api_key"),
        (&[("PREMISE_AUTH__TOKEN_SECRET", "too-short")], "auth.token_secret"),
        (&[("PREMISE_SERVR__LISTEN", "0.0.0.0:1")], "servr"),
        (&[("PREMISE_LOG__FORMAT", "xml")], "log.format"),
    ];
    for (env, setting) in cases {
        let (ok, output) = run(&["serve", "--database-url", url], env);
        assert!(!ok, "{env:?} was accepted");
        assert!(
            output.contains(setting),
            "{env:?}: the message does not name {setting}:\n{output}"
        );
    }
    let (ok, output) = run(&["serve", "--database-url", "mysql://localhost/x"], &[]);
    assert!(!ok && output.contains("database.url"), "{output}");

    let dir = premise_testkit::TempDir::new("premise-config");
    let file = dir.path().join("premise.toml");
    std::fs::write(&file, "[database]\nmax_connections = -1\n").unwrap();
    let (ok, output) =
        run(&["serve", "--config", file.to_str().unwrap(), "--database-url", url], &[]);
    assert!(!ok && output.contains("max_connections"), "{output}");
    let (ok, output) = run(&["serve", "--config", "/no/such/file.toml"], &[]);
    assert!(!ok && output.contains("/no/such/file.toml"), "{output}");
}

#[tokio::test]
async fn a_config_file_and_env_override_the_defaults() {
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = premise_testkit::TempDir::new("premise-config");
    let file = dir.path().join("premise.toml");
    std::fs::write(&file, "[auth]\ntoken_lifetime_secs = 600\nmax_failed_logins = 1\n").unwrap();
    let mut cmd = premise();
    cmd.args([
        "--config",
        file.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &db.url,
    ]);
    cmd.env("PREMISE_AUTH__MAX_FAILED_LOGINS", "5");
    let server = Server::spawn(cmd);
    let token = server.admin_token().await;
    let claims = support::jwt_payload(&token);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600,
        "from the file"
    );
    for _ in 0..2 {
        assert_eq!(
            server.login("admin", "wrong", None).await.0,
            StatusCode::UNAUTHORIZED,
            "env wins over the file"
        );
    }
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let db = TestDb::new(Backend::Postgres).await;
    let secret = "sign-with-this-very-secret-key-0123456789";
    let api_key = "monitoring-key-secret-42";
    // The test cluster trusts every connection, so a password in the URL is harmless to it.
    let url = db.url.replacen("premise@", "premise:db-password-xyz@", 1);
    let mut cmd = premise();
    cmd.args(["--listen", "127.0.0.1:0", "--database-url", &url]);
    cmd.envs([
        ("PREMISE_AUTH__TOKEN_SECRET", secret),
        ("PREMISE_API_KEY", api_key),
        ("RUST_LOG", "trace"),
    ]);
    let server = Server::spawn(cmd);
    let token = server.admin_token().await;
    server.get("/v1/users/admin", Some(&token)).await;
    server.get("/v1/health", None).await;
    let logs = server.logs();
    for leak in [secret, api_key, "db-password-xyz", support::ADMIN_PASSWORD, &token] {
        assert!(!logs.contains(leak), "{leak} leaked into the logs");
    }
    assert!(logs.contains("premise:***@"), "the URL is logged redacted:\n{logs}");
}

#[tokio::test]
async fn json_logs_when_configured() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start_with(&db, &[("PREMISE_LOG__FORMAT", "json")]).await;
    server.get("/healthz", None).await;
    let logs = server.logs();
    let line = logs.lines().find(|l| l.contains("listening on")).unwrap();
    let parsed: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(parsed["level"], "INFO");
}

#[tokio::test]
async fn operator_commands() {
    let db = TestDb::new(Backend::Sqlite).await;
    let url = db.url.as_str();
    let (ok, help) = run(&["--help"], &[]);
    assert!(ok);
    for word in ["serve", "migrate", "users", "--database-url", "--config", "--listen"] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }

    let (ok, output) = run(&["migrate", "--database-url", url], &[]);
    assert!(ok, "{output}");
    let (ok, output) = run(&["--database-url", url, "migrate"], &[]);
    assert!(ok, "global options before the subcommand: {output}");
    let (ok, output) = run(
        &[
            "users",
            "create",
            "--username",
            "operator",
            "--password",
            "Op3rator!",
            "--role",
            "admin",
            "--database-url",
            url,
        ],
        &[],
    );
    assert!(ok, "{output}");
    let (ok, output) = run(
        &[
            "users",
            "create",
            "--username",
            "operator",
            "--password",
            "Op3rator!",
            "--database-url",
            url,
        ],
        &[],
    );
    assert!(!ok && output.contains("already exists"), "{output}");
    let (ok, output) = run(
        &["users", "create", "--username", "weak", "--password", "weak", "--database-url", url],
        &[],
    );
    assert!(!ok && output.contains("8 to 64"), "{output}");

    // The password from standard input, keeping it out of `ps`.
    let mut child = premise()
        .args(["users", "set-password", "--username", "admin", "--database-url", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"Fr0mStdin!pw\n").unwrap();
    assert!(child.wait().unwrap().success());

    // The order a newcomer types first: global options, then the subcommand.
    let mut cmd = premise();
    cmd.args(["--database-url", url, "serve", "--listen", "127.0.0.1:0"]);
    let server = Server::spawn(cmd);
    let (status, body) = server.login("operator", "Op3rator!", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ops = token_of(&body);
    let (status, body) = server.get("/v1/users/operator", Some(&ops)).await;
    assert_eq!(
        (status, &body["users"][0]["ROLES"]),
        (StatusCode::OK, &serde_json::json!("ROLE_ADMIN"))
    );
    let (status, body) = server.login("admin", "Fr0mStdin!pw", None).await;
    assert_eq!(status, StatusCode::OK, "set-password also clears the first-login change: {body}");
}

#[tokio::test]
async fn sigterm_finishes_requests_in_flight_then_exits() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut server = Server::start(&db).await;
    server.admin_token().await;
    // Logins take a while (Argon2); start several, then ask the server to stop.
    let logins: Vec<_> = (0..4)
        .map(|_| {
            let req = server
                .http
                .post(server.url("/v1/users/login"))
                .basic_auth("admin", Some(support::ADMIN_PASSWORD));
            tokio::spawn(async move { req.send().await.map(|r| r.status()) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(15)).await;
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate(Duration::from_secs(10));
        (status, server.logs())
    })
    .await
    .unwrap();
    assert!(status.0.success(), "exit status {:?}:\n{}", status.0, status.1);
    assert!(status.1.contains("shutting down"), "{}", status.1);
    for login in logins {
        match login.await.unwrap() {
            Ok(code) => assert_eq!(code, StatusCode::OK),
            // A request that had not reached the server before it stopped listening is refused
            // at connect; one that had must have been answered.
            Err(e) => assert!(e.is_connect(), "a request in flight was cut off: {e}"),
        }
    }
}
