//! Signing in and out of the console: the accounts of `/v1/users/login`, counted against the
//! same failed-login limit, a first login's password change included.

use axum::Router;
use axum::extract::{Form, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use premise_base::UnixMs;
use premise_wire::Password;
use serde::Deserialize;

use super::{LOGIN_CSRF, SESSION, Session, constant_time_eq, cookie, head, href, set_cookie, to};
use crate::http::AppState;
use crate::http::auth::ClientAddr;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/login", get(form).post(sign_in))
        .route("/console/logout", post(sign_out))
}

/// The login form, with a fresh double-submit CSRF token (cookie and field).
async fn form(State(state): State<AppState>) -> Response {
    let token = premise_engine::random_uuid().simple().to_string();
    with_login_token(&state, &token, login_page(&state, &token, None, false))
}

fn with_login_token(state: &AppState, token: &str, page: Markup) -> Response {
    let cookie = set_cookie(state, LOGIN_CSRF, token, Some(3_600));
    ([(header::SET_COOKIE, cookie)], Html(page.into_string())).into_response()
}

fn login_page(state: &AppState, csrf: &str, error: Option<&str>, new_password: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(state, "Sign in")) }
            body.login {
                main {
                    h1 { "Premise" }
                    @if let Some(error) = error { p.error role="alert" { (error) } }
                    form method="post" action=(href(state, "/login")) {
                        input type="hidden" name="csrf" value=(csrf);
                        label { "Username" input name="username" autocomplete="username" required; }
                        label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                        @if new_password {
                            label { "New password" input type="password" name="new_password" autocomplete="new-password" required; }
                        }
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct Credentials {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    new_password: Option<String>,
}

/// The form's cookie, as the request carried it.
struct LoginToken(Option<String>);

impl axum::extract::FromRequestParts<AppState> for LoginToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(cookie(parts, LOGIN_CSRF).map(str::to_owned)))
    }
}

async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    LoginToken(expected): LoginToken,
    Form(form): Form<Credentials>,
) -> Response {
    let again = |error: &str, new_password: bool| {
        let token = premise_engine::random_uuid().simple().to_string();
        let page = login_page(&state, &token, Some(error), new_password);
        let mut response = with_login_token(&state, &token, page);
        *response.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
        response
    };
    let fresh = expected.is_some_and(|e| constant_time_eq(e.as_bytes(), form.csrf.as_bytes()));
    if !fresh {
        return again("The form had expired: sign in again.", false);
    }
    // Counted as failed before the password is checked, as `/v1/users/login` counts.
    match state.throttle.reserve(&client, state.clock.now()).await {
        Ok(true) => {}
        Ok(false) => return again("Too many failed sign-ins: try again later.", false),
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    }
    let user = match state.accounts.authenticate(&form.username, &form.password).await {
        Ok(Some(user)) => user,
        Ok(None) => return again("Wrong username or password.", false),
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    };
    if let Err(e) = state.throttle.clear(&client).await {
        return crate::http::ApiError::from(e).into_response();
    }
    let new_password = form.new_password.as_deref().filter(|p| !p.is_empty());
    let user_id = match new_password {
        Some(new_password) => {
            let Ok(password) = Password::parse("new_password", new_password) else {
                return again("The new password does not meet the password rules.", true);
            };
            match state.accounts.set_password(&user.username, &password).await {
                Ok(id) => id,
                Err(e) => return crate::http::ApiError::from(e).into_response(),
            }
        }
        None if user.must_change_password => {
            return again("The password must be changed at first sign-in.", true);
        }
        None => user.id,
    };
    let (token, claims) = state.tokens.issue(&user.username, &user_id, state.clock.now_secs());
    let lifetime = claims.exp - state.clock.now_secs();
    tracing::info!(user = %user.username, "console: signed in");
    let mut response = to(&state, "/messages");
    let headers = response.headers_mut();
    for cookie in [
        set_cookie(&state, SESSION, &token, Some(lifetime)),
        set_cookie(&state, LOGIN_CSRF, "", Some(0)),
    ] {
        if let Ok(value) = cookie.parse() {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(Debug, Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// Revokes the session's token, everywhere, and forgets the cookie.
async fn sign_out(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<LogoutForm>,
) -> Response {
    if let Err(refused) = session.check(&form.csrf) {
        return refused.into_response();
    }
    let claims = &session.caller.claims;
    let expires_at = UnixMs::from_secs(claims.exp);
    if let Err(e) = state.store.revoke_token(&claims.jti, expires_at, state.clock.now()).await {
        return crate::http::ApiError::from(e).into_response();
    }
    let mut response = to(&state, "/login");
    if let Ok(value) = set_cookie(&state, SESSION, "", Some(0)).parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
