//! The console: Premise's own pages, at `/console` (under `server.path_prefix`), for a person
//! rather than an integration. Server-rendered HTML (maud, which escapes every value it is
//! given), a stylesheet and a little script compiled into the binary, no inline script (a strict
//! `Content-Security-Policy`), live updates read from the database's state (so any replica
//! serves any page), paged reads by indexed keys (so watching costs the message path nothing).
//!
//! A session is a login token (the accounts and the failed-login limit of
//! `/v1/users/login`) in an `HttpOnly`, `SameSite=Strict` cookie, `Secure` when served over
//! TLS; every form carries a CSRF token bound to the session. Admins see everything;
//! `ROLE_USER` accounts see messages and health.

mod conversations;
mod health;
mod login;
mod messages;
mod webhooks;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};
use premise_wire::Role;

use super::AppState;
use super::auth::{Caller, Sender, constant_time_eq};

/// The session cookie: the login token.
const SESSION: &str = "premise_console";
/// Before login: the double-submit CSRF token of the login form.
const LOGIN_CSRF: &str = "premise_console_login";

const STYLE: &str = include_str!("assets/console.css");
const SCRIPT: &str = include_str!("assets/console.js");

/// No inline script or style, nothing from elsewhere, no framing.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' \
                      data:; media-src 'self'; connect-src 'self'; form-action 'self'; \
                      frame-ancestors 'none'; base-uri 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|State(state): State<AppState>| async move { to(&state, "/messages") }),
        )
        .route(
            "/console/assets/console.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/console/assets/console.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .merge(login::routes())
        .merge(conversations::routes())
        .merge(messages::routes())
        .merge(webhooks::routes())
        .merge(health::routes())
        .route_layer(axum::middleware::from_fn(headers))
}

/// The console's headers on every one of its answers.
async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// `path` of the console, under the path prefix.
fn href(state: &AppState, path: &str) -> String {
    format!("{}/console{path}", state.config.server.path_prefix)
}

/// 303 to `path` of the console.
fn to(state: &AppState, path: &str) -> Response {
    Redirect::to(&href(state, path)).into_response()
}

/// The value of cookie `name` of a request.
fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value for the console's path: `HttpOnly`, `SameSite=Strict`, and `Secure`
/// when Premise serves HTTPS itself or is told it is behind it.
fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Option<i64>) -> String {
    let secure = if state.certs.any() { "; Secure" } else { "" };
    let age = max_age.map(|secs| format!("; Max-Age={secs}")).unwrap_or_default();
    format!("{name}={value}; Path={}; HttpOnly; SameSite=Strict{secure}{age}", href(state, ""),)
}

/// A signed-in person: the account behind the session cookie, and the CSRF token its forms
/// carry. Without one, the page asked for answers with the login form.
#[derive(Debug, Clone)]
pub struct Session {
    pub caller: Caller,
    pub csrf: String,
}

/// What answers a request without a session: to the login form (the page asked for after).
#[derive(Debug)]
pub struct SignIn(Response);

impl IntoResponse for SignIn {
    fn into_response(self) -> Response {
        self.0
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = SignIn;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, SignIn> {
        let sign_in = || SignIn(to(state, "/login"));
        let token = cookie(parts, SESSION).ok_or_else(sign_in)?;
        let claims = state.tokens.verify(token, state.clock.now_secs()).map_err(|_| sign_in())?;
        let caller = Sender::from_claims(claims).check(state).await.map_err(|_| sign_in())?;
        let csrf = csrf_of(state, &caller.claims.jti);
        Ok(Self { caller, csrf })
    }
}

impl Session {
    pub fn is_admin(&self) -> bool {
        self.caller.role == Role::Admin
    }

    /// Refuses a form whose CSRF token is not this session's (403).
    pub fn check(&self, given: &str) -> Result<(), Refused> {
        if constant_time_eq(given.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(Refused("This form has expired: load the page again."))
        }
    }

    /// For admins only; others get 403.
    pub fn admin(&self) -> Result<(), Refused> {
        if self.is_admin() { Ok(()) } else { Err(Refused("This page is for admin accounts.")) }
    }
}

/// A request the console refuses (403), and why.
#[derive(Debug, Clone, Copy)]
pub struct Refused(&'static str);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        refused(StatusCode::FORBIDDEN, self.0)
    }
}

/// A session's CSRF token: bound to its login token, unguessable without the server's key.
fn csrf_of(state: &AppState, jti: &str) -> String {
    state.codes.seal("console-csrf", jti)
}

/// A short page saying why something was refused.
fn refused(status: StatusCode, why: &str) -> Response {
    let body = html! {
        (DOCTYPE)
        html lang="en" { head { meta charset="utf-8"; title { "Premise" } } body { p { (why) } } }
    };
    (status, Html(body.into_string())).into_response()
}

/// What every page's `<head>` holds: its title, the viewport for phones, the stylesheet.
fn head(state: &AppState, title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · Premise" }
        link rel="stylesheet" href=(href(state, "/assets/console.css"));
    }
}

/// A page of the console: the navigation, the signed-in account, `body`.
fn page(state: &AppState, session: &Session, title: &str, body: &Markup) -> Html<String> {
    let nav = [
        ("Conversations", "/conversations"),
        ("Messages", "/messages"),
        ("Webhooks", "/webhooks"),
        ("Health", "/health"),
    ];
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    (head(state, title))
                    script src=(href(state, "/assets/console.js")) defer {}
                }
                body data-events=(href(state, "/events")) {
                    header {
                        strong.brand { "Premise" }
                        nav {
                            @for (name, path) in nav {
                                @if session.is_admin() || path != "/webhooks" {
                                    a href=(href(state, path)) { (name) }
                                }
                            }
                        }
                        form.logout method="post" action=(href(state, "/logout")) {
                            input type="hidden" name="csrf" value=(session.csrf);
                            span.who { (session.caller.username) }
                            button type="submit" { "Log out" }
                        }
                    }
                    main { h1 { (title) } (body) }
                }
            }
        }
        .into_string(),
    )
}
