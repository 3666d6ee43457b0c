//! The console (`/console`) as a browser uses it, over HTTP: signing in with the accounts of
//! `/v1/users/login` (the failed-login limit included), a session cookie that scripts cannot
//! read, CSRF tokens on every form, a strict Content-Security-Policy with no inline script,
//! every value from a customer or an integration escaped, live status ticks read from the
//! database, and "retry now" for a callback the receiver refused.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::support::pipeline::{Mode, Receiver, ask_until, wait_for};
use crate::support::{ADMIN_PASSWORD, Backend, Server, TestDb};

both_backends!(
    a_console_session_is_safe_from_sign_in_to_sign_out,
    messages_show_escaped_and_their_ticks_follow_live,
    a_refused_callback_is_seen_and_retried_from_the_console,
    the_customer_is_played_from_the_console_in_the_sandbox,
    the_console_follows_the_cloud_bridge,
);

/// A browser's session with the console: its cookie and the CSRF token of its forms.
struct Console<'a> {
    server: &'a Server,
    http: reqwest::Client,
    session: String,
    csrf: String,
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The value of cookie `name` set by an answer, with the whole `Set-Cookie` line.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<(String, String)> {
    headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|line| {
        let value = line.strip_prefix(&format!("{name}="))?;
        Some((value.split(';').next().unwrap_or_default().to_owned(), line.to_owned()))
    })
}

/// The CSRF token a page's forms carry.
fn csrf_in(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a form with a CSRF token");
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// Fills the login form as a browser does: `Err` with the status and page when refused.
async fn sign_in<'a>(
    server: &'a Server,
    username: &str,
    password: &str,
    new_password: Option<&str>,
) -> Result<Console<'a>, (StatusCode, String)> {
    let http = browser();
    let form = http.get(server.url("/console/login")).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let (token, _) = set_cookie(form.headers(), "premise_console_login").expect("a login cookie");
    let csrf = csrf_in(&form.text().await.unwrap());
    assert_eq!(csrf, token, "double-submit: the field and the cookie");
    let mut fields = vec![("csrf", csrf.as_str()), ("username", username), ("password", password)];
    fields.extend(new_password.map(|p| ("new_password", p)));
    let answer = http
        .post(server.url("/console/login"))
        .header("cookie", format!("premise_console_login={token}"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    if answer.status() != StatusCode::SEE_OTHER {
        return Err((answer.status(), answer.text().await.unwrap()));
    }
    let (session, line) = set_cookie(answer.headers(), "premise_console").expect("a session");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(line.contains(attribute), "{attribute} in {line}");
    }
    let mut console = Console { server, http, session, csrf: String::new() };
    let (status, _, page) = console.get("/console/messages").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    console.csrf = csrf_in(&page);
    Ok(console)
}

impl Console<'_> {
    async fn get(&self, path: &str) -> (StatusCode, HeaderMap, String) {
        let answer = self
            .http
            .get(self.server.url(path))
            .header("cookie", format!("premise_console={}", self.session))
            .send()
            .await
            .unwrap();
        let (status, headers) = (answer.status(), answer.headers().clone());
        (status, headers, answer.text().await.unwrap())
    }

    async fn post(&self, path: &str, csrf: &str) -> (StatusCode, HeaderMap) {
        self.submit(path, &[("csrf", csrf)]).await
    }

    /// Submits a form of the console's pages.
    async fn submit(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, HeaderMap) {
        let answer = self
            .http
            .post(self.server.url(path))
            .header("cookie", format!("premise_console={}", self.session))
            .form(fields)
            .send()
            .await
            .unwrap();
        (answer.status(), answer.headers().clone())
    }
}

async fn a_console_session_is_safe_from_sign_in_to_sign_out(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    // Without a session, every page answers with the login form.
    let away = browser().get(server.url("/console/health")).send().await.unwrap();
    assert_eq!(away.status(), StatusCode::SEE_OTHER);
    assert_eq!(away.headers()[LOCATION], "/console/login");
    // A form without its own token is refused; so are wrong passwords; the first sign-in
    // changes the default password, as the API's first login does.
    let (status, page) = sign_in(&server, "admin", "wrong", None).await.err().unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("Wrong username or password"), "{page}");
    let (status, page) = sign_in(&server, "admin", "secret", None).await.err().unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("must be changed"), "{page}");
    let console = sign_in(&server, "admin", "secret", Some(ADMIN_PASSWORD)).await.unwrap();
    let stale = browser()
        .post(server.url("/console/login"))
        .header("cookie", "premise_console_login=abc")
        .form(&[("csrf", "xyz"), ("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED, "a login form's token must match");

    // Every page: a strict policy, no inline script, no framing.
    for path in ["/console/messages", "/console/webhooks", "/console/health"] {
        let (status, headers, page) = console.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe"), "{policy}");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["cache-control"], "no-store");
        for script in page.split("<script").skip(1) {
            assert!(script.trim_start().starts_with("src="), "inline script on {path}: {script}");
        }
    }
    let (status, headers, script) = console.get("/console/assets/console.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(script.contains("EventSource"));

    // A form with another session's token (or none) is refused; logging out revokes the
    // session's token everywhere.
    let (status, _) = console.post("/console/logout", "not-the-token").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, headers) = console.post("/console/logout", &console.csrf).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(set_cookie(&headers, "premise_console").is_some_and(|(v, _)| v.is_empty()));
    let (status, headers, _) = console.get("/console/messages").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the old cookie no longer signs in");
    assert_eq!(headers[LOCATION], "/console/login");

    // A user account sees messages and health, not webhooks.
    let admin = server.admin_token().await;
    server.user_token(&admin, "viewer", "V1ewer!Passw0rd").await;
    let viewer = sign_in(&server, "viewer", "V1ewer!Passw0rd", None).await.unwrap();
    assert_eq!(viewer.get("/console/health").await.0, StatusCode::OK);
    let (status, _, page) = viewer.get("/console/webhooks").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
}

/// The failed-login limit of `/v1/users/login` holds for the form too (same counter).
#[tokio::test]
async fn the_failed_login_limit_applies_to_the_console() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start_with(&db, &[("PREMISE_AUTH__MAX_FAILED_LOGINS", "3")]).await;
    for _ in 0..3 {
        let (_, page) = sign_in(&server, "admin", "wrong", None).await.err().unwrap();
        assert!(page.contains("Wrong username or password"), "{page}");
    }
    let (status, page) =
        sign_in(&server, "admin", "secret", Some(ADMIN_PASSWORD)).await.err().unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("Too many failed sign-ins"), "{page}");
    let (status, _) = server.login("admin", "secret", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "one limit, the API's and the form's");
}

async fn messages_show_escaped_and_their_ticks_follow_live(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;
    let console = sign_in(&server, "admin", ADMIN_PASSWORD, None).await.unwrap();
    let hostile = "<script>alert(1)</script>";
    let (status, id, answer) = server.send_text(&token, "16505550100", hostile).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let id = id.unwrap();
    let (_, _, list) = console.get("/console/messages").await;
    assert!(list.contains(&format!(r#"data-message="{id}""#)), "{list}");
    let (status, _, page) = console.get(&format!("/console/messages/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "shown as text: {page}");
    assert!(!page.contains(hostile), "never as markup");
    // Searched by its id, by its recipient, by its status.
    for search in [format!("id={id}"), "to=16505550100".to_owned()] {
        let (_, _, found) = console.get(&format!("/console/messages?{search}")).await;
        assert!(found.contains(&format!(r#"data-message="{id}""#)), "{search}");
    }
    let (_, _, none) = console.get("/console/messages?id=nope").await;
    assert!(none.contains("No message matches"));
    // By time: accepted by a moment (UTC).
    let (_, _, later) = console.get("/console/messages?until=2100-01-01T00%3A00").await;
    assert!(later.contains(&format!(r#"data-message="{id}""#)), "{later}");
    let (_, _, earlier) = console.get("/console/messages?until=2000-01-01T00%3A00").await;
    assert!(earlier.contains("No message matches"), "{earlier}");

    // A message that fails (the sandbox's test number for 1026): its error's code and title in
    // the conversation and on its page's timeline.
    let (_, failing, _) = server.send_text(&token, "16505550103", "never arrives").await;
    let failing = failing.unwrap();
    let page = ask_until(
        Duration::from_secs(20),
        "the failure in the conversation",
        || async { console.get("/console/conversations/16505550103").await.2 },
        |page| page.contains(r#"data-status="failed""#),
    )
    .await;
    assert!(page.contains(r#"<span class="error">1026 Receiver incapable</span>"#), "{page}");
    let (_, _, page) = console.get(&format!("/console/messages/{failing}")).await;
    let failed = page.find(r#"<li data-status="failed">"#).expect("failed on the timeline");
    assert!(page[failed..].contains("1026 Receiver incapable"), "{page}");

    // The live stream: one event per status as it changes, from sent (or later) to read.
    let mut stream = console
        .http
        .get(server.url(&format!("/console/events?ids={id}")))
        .header("cookie", format!("premise_console={}", console.session))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !seen.contains(r#""status":"read""#) {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk()).await;
        let chunk = chunk.expect("read within 30 s").unwrap().expect("the stream goes on");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: status"), "{seen}");
    let order: Vec<usize> = ["sent", "delivered", "read"]
        .iter()
        .filter_map(|s| seen.find(&format!(r#""status":"{s}""#)))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "in lifecycle order: {seen}");
}

async fn a_refused_callback_is_seen_and_retried_from_the_console(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;
    let receiver = Receiver::start().await;
    receiver.set_mode(Mode::Status(500));
    // Retried only after ten minutes: within the test only "retry now" delivers.
    server
        .patch_settings(
            &token,
            json!({"webhooks": {"url": receiver.url(), "message": {"sent": true}},
                   "callback_backoff_delay_ms": 600_000}),
        )
        .await;
    let (status, id, _) = server.send_text(&token, "16505550102", "offline").await;
    assert_eq!(status, StatusCode::CREATED);
    let id = id.unwrap();
    wait_for(Duration::from_secs(20), "a refused callback", || !receiver.hits().is_empty()).await;
    let console = sign_in(&server, "admin", ADMIN_PASSWORD, None).await.unwrap();
    let page = ask_until(
        Duration::from_secs(10),
        "the refused callback, listed with its failure",
        || async { console.get("/console/webhooks").await.2 },
        |page| page.contains(&id) && page.contains(r#"<td class="failures">1</td>"#),
    )
    .await;
    assert!(page.contains("the receiver answered 500"), "with the last error: {page}");
    let at = page.find("/webhooks/callbacks/").expect("a retry button");
    let seq: String = page[at + "/webhooks/callbacks/".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    // The receiver is back; nothing comes before the retry (ten minutes away) but the retry.
    receiver.set_mode(Mode::Ok);
    let refused = receiver.hits().len();
    let retry = format!("/console/webhooks/callbacks/{seq}/retry");
    assert_eq!(console.post(&retry, "forged").await.0, StatusCode::FORBIDDEN);
    // Waits on the server process: a forged retry would be delivered within a dispatcher round.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.hits().len(), refused, "a forged retry does nothing");
    let (status, headers) = console.post(&retry, &console.csrf).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/console/webhooks");
    wait_for(Duration::from_secs(10), "the retried callback taken", || {
        receiver.hits().iter().any(|h| h.answered == 200 && h.body.to_string().contains(&id))
    })
    .await;
    let page = ask_until(
        Duration::from_secs(10),
        "the outbox empty",
        || async { console.get("/console/webhooks").await.2 },
        |page| page.contains("the receiver has taken every callback"),
    )
    .await;
    assert!(!page.contains(&id));
    // The message's page: when it was sent, and each attempt of its callback, refused and
    // then taken.
    let page = ask_until(
        Duration::from_secs(10),
        "both attempts on the message's page",
        || async { console.get(&format!("/console/messages/{id}")).await.2 },
        |page| page.contains(r#"data-outcome="delivered""#),
    )
    .await;
    assert!(page.contains(r#"<li data-status="sent">"#), "the timeline: {page}");
    let failed = page.find(r#"<tr data-outcome="failed">"#).expect("the refused attempt");
    let delivered = page.find(r#"<tr data-outcome="delivered">"#).expect("the retried one");
    assert!(failed < delivered, "oldest first");
    assert_eq!(page.matches("<tr data-outcome=").count(), 2, "{page}");
    assert!(page[failed..delivered].contains("<td>500</td><td>"), "{page}");
    assert!(page[failed..delivered].contains("the receiver answered 500"));
    assert!(page[delivered..].contains("<td>sent</td><td>200</td>"), "{page}");
}

/// The console in a real browser (headless Chromium over WebDriver): signing in through the
/// form, a message's ticks going to `read` live (no reload), a customer's script shown as text
/// and never run, every page usable at a phone's width. Screenshots are saved under
/// `target/console-screenshots/`.
#[tokio::test]
async fn the_console_works_in_a_real_browser() {
    use fantoccini::Locator;

    use crate::support::browser::Browser;

    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;
    let browser = Browser::start(1280, 900).await;
    let web = &browser.client;
    web.goto(&server.url("/console/login")).await.unwrap();
    web.find(Locator::Css("input[name=username]")).await.unwrap().send_keys("admin").await.unwrap();
    let password = web.find(Locator::Css("input[name=password]")).await.unwrap();
    password.send_keys(ADMIN_PASSWORD).await.unwrap();
    web.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    web.wait().for_element(Locator::Css("table.messages, p.empty")).await.unwrap();
    assert!(web.current_url().await.unwrap().path().ends_with("/console/messages"));

    // A message sent now: its row's ticks move to `read` while the page stays open.
    let (status, id, _) = server.send_text(&token, "16505550100", "Your order shipped").await;
    assert_eq!(status, StatusCode::CREATED);
    let id = id.unwrap();
    web.refresh().await.unwrap();
    let tick = format!(r#"tr[data-message="{id}"] .ticks"#);
    let first = web.find(Locator::Css(&tick)).await.unwrap().attr("data-status").await.unwrap();
    assert_ne!(first.as_deref(), Some("read"), "not read yet when the page loaded");
    // The browser's own wait (WebDriver polls the page) until the tick reads `read`.
    let read = format!(r#"{tick}[data-status="read"]"#);
    web.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(&read))
        .await
        .expect("the tick reached read without a reload");
    browser.screenshot("messages").await;

    // A customer's (or an integration's) script is text.
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let (_, xss, _) = server.send_text(&token, "16505550101", hostile).await;
    web.goto(&server.url(&format!("/console/messages/{}", xss.unwrap()))).await.unwrap();
    let shown = web.find(Locator::Css("pre.payload")).await.unwrap().text().await.unwrap();
    assert!(shown.contains(hostile), "{shown}");
    assert!(web.get_alert_text().await.is_err(), "no alert opened");
    assert!(web.find(Locator::Css("main img")).await.is_err(), "no element made of it");
    browser.screenshot("script-as-text").await;

    // Writing as the customer, in the conversation's composer: it reaches the integration.
    let receiver = Receiver::start().await;
    server.use_webhook(&token, &receiver.url()).await;
    web.goto(&server.url("/console/conversations/16505550100")).await.unwrap();
    let text = web.find(Locator::Css("form.compose textarea[name=text]")).await.unwrap();
    text.send_keys("Where is my parcel?").await.unwrap();
    web.find(Locator::Css("form.compose button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(Duration::from_secs(10), "the customer's text at the webhook", || {
        receiver.hits().iter().any(|h| h.body.to_string().contains("Where is my parcel?"))
    })
    .await;
    web.wait()
        .for_element(Locator::XPath("//li[contains(., 'Where is my parcel?')]"))
        .await
        .unwrap();
    browser.screenshot("conversation").await;

    // A receiver that refuses: the webhooks page shows the failure; once it is back, "Retry
    // now" delivers (the next attempt is ten minutes away).
    receiver.set_mode(Mode::Status(503));
    server.patch_settings(&token, json!({"callback_backoff_delay_ms": 600_000})).await;
    let (_, refused, _) = server.send_text(&token, "16505550102", "Refused at first").await;
    let refused = refused.unwrap();
    wait_for(Duration::from_secs(20), "a refused callback", || {
        receiver.hits().iter().any(|h| h.answered == 503 && h.body.to_string().contains(&refused))
    })
    .await;
    web.goto(&server.url("/console/webhooks")).await.unwrap();
    let row = format!(r#"//tr[td[contains(., '{refused}')]]"#);
    let listed = web.find(Locator::XPath(&row)).await.unwrap().text().await.unwrap();
    assert!(listed.contains("503"), "the failure shown: {listed}");
    receiver.set_mode(Mode::Ok);
    let retry = format!("{row}//button[contains(., 'Retry now')]");
    web.find(Locator::XPath(&retry)).await.unwrap().click().await.unwrap();
    wait_for(Duration::from_secs(10), "the retried callback taken", || {
        receiver.hits().iter().any(|h| h.answered == 200 && h.body.to_string().contains(&refused))
    })
    .await;
    // Its page: the timeline, and the refused attempt then the delivered one.
    let message = server.url(&format!("/console/messages/{refused}"));
    web.goto(&message).await.unwrap();
    let delivered = Locator::Css(r#"table.attempts tr[data-outcome="delivered"]"#);
    // The retry's outcome is written just after the receiver answered: reloaded until shown.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while web.find(delivered).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the delivered attempt shown");
        web.refresh().await.unwrap();
    }
    let attempts = web.find(Locator::Css("table.attempts")).await.unwrap().text().await.unwrap();
    assert!(attempts.contains("503") && attempts.contains("delivered"), "{attempts}");
    browser.screenshot("message").await;

    // At a phone's width every page fits, nothing to scroll sideways.
    web.set_window_size(390, 844).await.unwrap();
    for path in [
        "/console/conversations",
        "/console/conversations/16505550100",
        "/console/messages",
        &format!("/console/messages/{refused}"),
        "/console/webhooks",
        "/console/health",
    ] {
        web.goto(&server.url(path)).await.unwrap();
        let fits = web
            .execute("return document.documentElement.scrollWidth <= window.innerWidth;", vec![])
            .await
            .unwrap();
        assert_eq!(fits, serde_json::Value::Bool(true), "{path} at 390 px");
    }
    browser.screenshot("phone").await;
}

async fn the_customer_is_played_from_the_console_in_the_sandbox(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;
    let receiver = Receiver::start().await;
    server.use_webhook(&token, &receiver.url()).await;
    let console = sign_in(&server, "admin", ADMIN_PASSWORD, None).await.unwrap();
    let customer = "16505550100";
    let question = json!({"to": customer, "type": "interactive", "interactive": {
        "type": "button", "body": {"text": "Ship it?"},
        "action": {"buttons": [
            {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
            {"type": "reply", "reply": {"id": "no", "title": "<i>No</i>"}}]}}});
    let (status, answer) =
        server.send_json(reqwest::Method::POST, "/v1/messages", Some(&token), question).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let asked = answer["messages"][0]["id"].as_str().unwrap().to_owned();

    let greeting = json!({"to": customer, "type": "template", "template": {
        "namespace": "premise_sandbox", "name": "hello_world",
        "language": {"policy": "deterministic", "code": "en_US"}}});
    let (status, answer) =
        server.send_json(reqwest::Method::POST, "/v1/messages", Some(&token), greeting).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (_, _, list) = console.get("/console/conversations").await;
    assert!(list.contains(&format!("/console/conversations/{customer}")), "{list}");
    let chat = format!("/console/conversations/{customer}");
    let (status, _, page) = console.get(&chat).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Ship it?") && page.contains("&lt;i&gt;No&lt;/i&gt;"), "{page}");
    assert!(page.contains("Hello World\nWelcome and congratulations!!"), "hydrated: {page}");
    assert!(!page.contains("<i>No</i>"), "a button's title is text");
    assert!(page.contains("Tap “Yes” as the customer"), "{page}");
    assert!(page.contains("24-hour window <span class=\"bad\">closed</span>"), "{page}");

    // Tapping a button as the customer: the integration's webhook gets the reply to it.
    let write = format!("{chat}/write");
    let (status, _) =
        console.submit(&write, &[("csrf", "forged"), ("kind", "text"), ("text", "x")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let fields = [
        ("csrf", console.csrf.as_str()),
        ("kind", "button"),
        ("choice_id", "yes"),
        ("choice_title", "Yes"),
        ("reply_to", asked.as_str()),
    ];
    let (status, headers) = console.submit(&write, &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION].to_str().unwrap(), chat);
    let inbound = |check: &dyn Fn(&serde_json::Value) -> bool| {
        receiver
            .hits()
            .iter()
            .any(|h| h.body["messages"].as_array().is_some_and(|m| m.iter().any(check)))
    };
    wait_for(Duration::from_secs(10), "the tap at the webhook", || {
        inbound(&|m| {
            m["interactive"]["button_reply"]["id"] == "yes" && m["context"]["id"] == asked.as_str()
        })
    })
    .await;
    // Who wrote, in the list: their profile's name and business-scoped user id beside the number.
    let (_, _, list) = console.get("/console/conversations").await;
    let user_id = receiver
        .hits()
        .iter()
        .find_map(|h| h.body["contacts"][0]["user_id"].as_str().map(str::to_owned))
        .expect("the webhook names the customer's user id");
    let identity =
        format!(r#"<span class="identity">Sandbox Customer <code>{user_id}</code></span>"#);
    assert!(list.contains(&identity), "{list}");
    // A reaction as the customer, to the business's message.
    let fields = [
        ("csrf", console.csrf.as_str()),
        ("kind", "reaction"),
        ("emoji", "👍"),
        ("reply_to", asked.as_str()),
    ];
    assert_eq!(console.submit(&write, &fields).await.0, StatusCode::SEE_OTHER);
    wait_for(Duration::from_secs(10), "the reaction at the webhook", || {
        inbound(&|m| {
            m["reaction"]["emoji"] == "👍" && m["reaction"]["message_id"] == asked.as_str()
        })
    })
    .await;
    // Writing as the customer; what they wrote shows as text, and their window is open.
    let fields = [("csrf", console.csrf.as_str()), ("kind", "text"), ("text", "<b>thanks</b>")];
    assert_eq!(console.submit(&write, &fields).await.0, StatusCode::SEE_OTHER);
    wait_for(Duration::from_secs(10), "the text at the webhook", || {
        inbound(&|m| m["text"]["body"] == "<b>thanks</b>")
    })
    .await;
    let (_, _, page) = console.get(&chat).await;
    assert!(page.contains("&lt;b&gt;thanks&lt;/b&gt;") && !page.contains("<b>thanks</b>"));
    assert!(
        page.contains(r#"<blockquote class="context">↪ Ship it?</blockquote>"#),
        "the tap quotes the question: {page}"
    );
    assert!(page.contains("24-hour window <span class=\"ok\">open</span>"), "{page}");
    // Sending a photo and a voice note as the customer: stored, delivered with its id and
    // caption, previewed (the photo shown, the audio playable in the page).
    let upload = |bytes: Vec<u8>, name: &'static str, mime: &'static str| {
        let file = reqwest::multipart::Part::bytes(bytes).file_name(name).mime_str(mime).unwrap();
        let form = reqwest::multipart::Form::new()
            .text("csrf", console.csrf.clone())
            .part("file", file)
            .text("caption", "<b>look</b>");
        console
            .http
            .post(server.url(&format!("{chat}/upload")))
            .header("cookie", format!("premise_console={}", console.session))
            .multipart(form)
            .send()
    };
    let uploads = [
        (
            crate::support::files::jpeg(16),
            "photo.jpg",
            "image/jpeg",
            "image",
            r#"<img class="preview" src=""#,
        ),
        (
            b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec(),
            "voice.mp3",
            "audio/mpeg",
            "audio",
            r#"<audio class="preview" controls preload="metadata" src=""#,
        ),
    ];
    for (bytes, name, mime, kind, preview) in uploads {
        let sent = upload(bytes, name, mime).await.unwrap();
        assert_eq!(sent.status(), StatusCode::SEE_OTHER, "{}", sent.text().await.unwrap());
        wait_for(Duration::from_secs(10), "the file at the webhook", || {
            inbound(&|m| m["type"] == kind && m[kind]["id"].is_string())
        })
        .await;
        let (_, _, page) = console.get(&chat).await;
        let at = page.find(&format!("{preview}/console/media/")).expect(preview);
        let media: String = page[at + preview.len() + "/console/media/".len()..]
            .chars()
            .take_while(|c| *c != '"')
            .collect();
        let (status, headers, _) = console.get(&format!("/console/media/{media}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], mime);
        assert_eq!(headers["content-disposition"], "inline", "{kind} shown in the page");
    }
    let (_, _, page) = console.get(&chat).await;
    assert!(page.contains("&lt;b&gt;look&lt;/b&gt;"), "the caption as text");
    assert!(inbound(&|m| m["type"] == "image" && m["image"]["caption"] == "<b>look</b>"));
    // A day later on the sandbox's clock the window has closed.
    let fields = [("csrf", console.csrf.as_str()), ("hours", "24"), ("customer", customer)];
    assert_eq!(console.submit("/console/sandbox/clock", &fields).await.0, StatusCode::SEE_OTHER);
    let (_, _, page) = console.get(&chat).await;
    assert!(page.contains("24-hour window <span class=\"bad\">closed</span>"), "{page}");
}

/// Through the Cloud API (the fake standing in): a message found by its `wamid`, a customer's
/// message from Meta in the conversation (as text), no composer, and a webhook Meta sent that
/// was kept as not mapped, processed again from the console.
async fn the_console_follows_the_cloud_bridge(backend: Backend) {
    use premise_testkit::cloud::AutoStatuses;
    use premise_testkit::cloud::webhooks::{messages_payload, text_message, username_payload};

    use crate::support::bridge::{Bridge, unix_now};

    let db = TestDb::new(backend).await;
    let bridge = Bridge::start(&db, AutoStatuses::lifecycle()).await;
    let console = sign_in(&bridge.server, "admin", ADMIN_PASSWORD, None).await.unwrap();
    let customer = "16315551234";
    let id = bridge.send_text(customer, "Your table is ready").await;
    bridge.statuses_of(&id, 2).await;
    let (_, _, page) = console.get(&format!("/console/messages/{id}")).await;
    let at = page.find("<code>wamid.").expect("the Cloud id on the message's page");
    let wamid: String = page[at + "<code>".len()..].chars().take_while(|c| *c != '<').collect();
    let (_, _, found) = console.get(&format!("/console/messages?id={wamid}")).await;
    assert!(found.contains(&format!(r#"data-message="{id}""#)), "found by its wamid: {found}");

    let said = text_message(customer, "wamid.FROMCUSTOMER1", unix_now(), "<i>on my way</i>");
    let delivered = bridge.fake.webhooks().post(&messages_payload("Ann", customer, &[said])).await;
    assert_eq!(delivered, 200);
    let chat = format!("/console/conversations/{customer}");
    let page = ask_until(
        Duration::from_secs(10),
        "the customer's message in the conversation",
        || async { console.get(&chat).await.2 },
        |page| page.contains("&lt;i&gt;on my way&lt;/i&gt;"),
    )
    .await;
    assert!(page.contains("Your table is ready"), "{page}");
    assert!(!page.contains("Send as the customer"), "no composer outside the sandbox");
    // A customer known only by username and business-scoped user id (no number): listed by
    // the user id, with their name and username.
    let cy = "US.13491208655302741919";
    let hidden = text_message("", "wamid.FROMCY1", unix_now(), "hello from cy");
    let payload = username_payload("Cy", "cy.writes", cy, &[hidden]);
    assert_eq!(bridge.fake.webhooks().post(&payload).await, 200);
    let list = ask_until(
        Duration::from_secs(10),
        "the username customer in the list",
        || async { console.get("/console/conversations").await.2 },
        |page| page.contains(&format!("/console/conversations/{cy}")),
    )
    .await;
    assert!(list.contains(r#"<span class="identity">Cy @cy.writes </span>"#), "{list}");
    let (_, _, page) = console.get(&format!("/console/conversations/{cy}")).await;
    assert!(page.contains("hello from cy"), "{page}");
    let who = format!(
        "<strong>Cy</strong> · Business-scoped user id <code>{cy}</code>, username @cy.writes"
    );
    assert!(page.contains(&who), "{page}");

    let template = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "message_template_status_update",
         "value": {"event": "APPROVED", "message_template_name": "hello"}}]}]});
    // Signed as Meta signs, sent raw: the fake checks only what Premise maps against the schema.
    let body = template.to_string().into_bytes();
    let signature = bridge.fake.webhooks().sign(&body);
    assert_eq!(bridge.fake.webhooks().post_raw(body, Some(&signature)).await, 200);
    let page = ask_until(
        Duration::from_secs(10),
        "the kept webhook on the webhooks page",
        || async { console.get("/console/webhooks").await.2 },
        |page| page.contains("message_template_status_update"),
    )
    .await;
    let at = page.find("/webhooks/received/").expect("a Process again button");
    let kept: String =
        page[at + "/webhooks/received/".len()..].chars().take_while(char::is_ascii_digit).collect();
    let again = format!("/console/webhooks/received/{kept}/process");
    assert_eq!(console.post(&again, "forged").await.0, StatusCode::FORBIDDEN);
    let (status, headers) = console.post(&again, &console.csrf).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "processed again (still not mapped, still kept)");
    assert_eq!(headers[LOCATION], "/console/webhooks");
    bridge.assert_nothing_invalid();
}

/// Two replicas on one database behind a load balancer: a session signed in on one serves the
/// other's pages and forms (one CSRF token), a message sent through one is followed live on the
/// other, and logging out on one ends the session on both.
#[tokio::test]
async fn any_replica_serves_the_console() {
    let db = TestDb::new(Backend::Postgres).await;
    let a = Server::start_with(&db, &[("PREMISE_NODE__NAME", "console-a")]).await;
    let b = Server::start_with(&db, &[("PREMISE_NODE__NAME", "console-b")]).await;
    let token = a.admin_token().await;
    let on_a = sign_in(&a, "admin", ADMIN_PASSWORD, None).await.unwrap();
    let on_b =
        Console { server: &b, http: browser(), session: on_a.session.clone(), csrf: String::new() };
    let (status, _, page) = on_b.get("/console/messages").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(csrf_in(&page), on_a.csrf, "one CSRF token for the session, on every replica");

    let (_, id, _) = a.send_text(&token, "16505550100", "Sent through A").await;
    let id = id.unwrap();
    let mut stream = on_b
        .http
        .get(b.url(&format!("/console/events?ids={id}")))
        .header("cookie", format!("premise_console={}", on_b.session))
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !seen.contains(r#""status":"read""#) {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk()).await;
        let chunk =
            chunk.expect("read within 30 s, seen from B").unwrap().expect("the stream goes on");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }

    // Health, on either replica: both replicas, and which holds the one shard.
    for console in [&on_a, &on_b] {
        let page = ask_until(
            Duration::from_secs(20),
            "both replicas with the shards they hold",
            || async { console.get("/console/health").await.2 },
            |page| {
                page.contains("console-a")
                    && page.contains("console-b")
                    && page.contains(r#"<td class="shards">0</td>"#)
            },
        )
        .await;
        assert_eq!(page.matches(r#"<td class="shards">0</td>"#).count(), 1, "one owner: {page}");
        assert_eq!(page.matches(r#"<td class="shards">none</td>"#).count(), 1, "{page}");
    }

    let (status, _) = on_b.post("/console/logout", &on_a.csrf).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    ask_until(
        Duration::from_secs(10),
        "the session ended on A too",
        || async { on_a.get("/console/messages").await.0 },
        |status| *status == StatusCode::SEE_OTHER,
    )
    .await;
}
