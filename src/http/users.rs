//! `/v1/users`: login, logout and account management, as On-Premises had them
//! (`docs/onprem-api.md` section 2).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use premise_base::UnixMs;
use premise_wire::{
    CreateUserRequest, ErrorCode, LoginRequest, LoginToken, Role, UpdateUserRequest, UserView,
    format_expires_after,
};
use serde_json::json;

use super::auth::{Admin, Caller, ClientAddr, credentials};
use super::body::{JsonBody, OptionalJsonBody};
use super::reply::{reply, reply_empty};
use super::{ApiError, AppState};
use crate::auth::{AccountError, DEFAULT_ADMIN};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/users/login", post(login))
        .route("/v1/users/logout", post(logout))
        .route("/v1/users", post(create))
        .route("/v1/users/{username}", get(show).put(update).delete(remove))
}

/// `POST /v1/users/login` with HTTP Basic credentials and an optional `{"new_password"}`.
async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    OptionalJsonBody(body): OptionalJsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let now = state.clock.now_secs();
    let (username, password) = basic_credentials(&headers).ok_or_else(ApiError::unauthorized)?;
    // Counted as failed before the password is checked, cleared if it was right.
    if !state.throttle.reserve(&client, state.clock.now()).await? {
        return Err(ApiError::new(
            ErrorCode::TooManyRequests,
            "Rate limiting exceeded on bad login attempts",
        ));
    }
    let Some(user) = state.accounts.authenticate(&username, &password).await? else {
        return Err(ApiError::unauthorized());
    };
    state.throttle.clear(&client).await?;

    let user_id = match body.unwrap_or_default().new_password()? {
        // Tokens name the account's id, which the change renews: this one names the new id.
        Some(new_password) => state.accounts.set_password(&user.username, &new_password).await?,
        None if user.must_change_password => {
            return Err(ApiError::new(
                ErrorCode::PasswordChangeRequired,
                "The password must be changed at first login: send {\"new_password\": \"...\"}.",
            ));
        }
        None => user.id,
    };
    let (token, claims) = state.tokens.issue(&user.username, &user_id, now);
    let users = [LoginToken { token, expires_after: format_expires_after(claims.exp) }];
    Ok(reply(StatusCode::OK, json!({ "users": users })))
}

/// `POST /v1/users/logout`: revokes the presented token, and only that one.
async fn logout(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let expires_at = UnixMs::from_secs(caller.claims.exp);
    state.store.revoke_token(&caller.claims.jti, expires_at, state.clock.now()).await?;
    Ok(reply_empty(StatusCode::OK))
}

/// `POST /v1/users` (admin): `{"username","password"}` → 201.
async fn create(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(body): JsonBody<CreateUserRequest>,
) -> Result<Response, ApiError> {
    let (username, password, role) = body.parse()?;
    state.accounts.create(&username, &password, role).await.map_err(|e| match e {
        // On-Premises answered a duplicate with 1014 and this text; integrations match on it.
        AccountError::Exists => {
            ApiError::new(ErrorCode::InternalError, "Unable to create user. Already exist?")
        }
        other => other.into(),
    })?;
    tracing::info!(%username, role = role.as_str(), by = %admin.username, "account created");
    let users = [UserView { username: username.to_string(), roles: None }];
    Ok(reply(StatusCode::CREATED, json!({ "users": users })))
}

/// `GET /v1/users/{username}`: admins see anyone, users themselves.
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    may_manage(&caller, &username)?;
    let user = state.store.user(&username).await?.ok_or_else(|| unknown_user(&username))?;
    let users = [UserView { username: user.username, roles: Some(user.role) }];
    Ok(reply(StatusCode::OK, json!({ "users": users })))
}

/// `PUT /v1/users/{username}` `{"password"}`: admins for anyone, users for themselves.
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
    JsonBody(body): JsonBody<UpdateUserRequest>,
) -> Result<Response, ApiError> {
    may_manage(&caller, &username)?;
    let password = body.parse()?;
    // Every token of the account issued before now stops holding, the caller's own included.
    state.accounts.set_password(&username, &password).await?;
    let users = [UserView { username, roles: None }];
    Ok(reply(StatusCode::OK, json!({ "users": users })))
}

/// `DELETE /v1/users/{username}` (admin): the account and with it every token it holds.
async fn remove(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    if username == DEFAULT_ADMIN {
        return Err(ApiError::forbidden("The admin account cannot be deleted."));
    }
    if !state.store.delete_user(&username).await? {
        return Err(unknown_user(&username));
    }
    tracing::info!(%username, by = %admin.username, "account deleted");
    Ok(reply_empty(StatusCode::OK))
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let decoded = STANDARD.decode(credentials(headers, "Basic")?).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn may_manage(caller: &Caller, username: &str) -> Result<(), ApiError> {
    if caller.role == Role::Admin || caller.username == username {
        Ok(())
    } else {
        Err(ApiError::forbidden("Only an admin may manage other accounts."))
    }
}

fn unknown_user(username: &str) -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFound, format!("User '{username}' does not exist."))
}
