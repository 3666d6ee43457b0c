//! Who is calling, as extractors: [`Caller`] for `Authorization: Bearer <token>`, [`Sender`]
//! for the same on `POST /v1/messages`, whose store check is made by the write it authorizes,
//! [`Admin`] for callers with `ROLE_ADMIN`, [`Monitor`] for the monitoring endpoints that also
//! take `Authorization: Apikey <key>`, and [`ClientAddr`] for login throttling.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use premise_store::Credential;
use premise_wire::Role;

use super::{ApiError, AppState};
use crate::auth::Claims;

/// An authenticated caller: a valid, unrevoked token of an existing account.
#[derive(Debug, Clone)]
pub struct Caller {
    pub username: String,
    pub role: Role,
    pub claims: Claims,
}

/// A caller whose token has a good signature and has not expired, and whose standing in the
/// store (the account still there with the token's id, the token not revoked) is checked
/// later: by the statement that stores the message it sends ([`Sender::credential`]), so a
/// message costs one round trip to the database, not two; or by [`Sender::check`] before
/// anything else is read or answered for it. Either way the answer is the one of a check
/// made after the request arrived.
#[derive(Debug, Clone)]
pub struct Sender(Claims);

/// A caller with `ROLE_ADMIN`; anyone else gets 403 with 1005.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

/// A caller of a monitoring endpoint: a valid API key or a valid token.
#[derive(Debug, Clone)]
pub struct Monitor;

/// The client's address for throttling: the peer, or the first `X-Forwarded-For` entry when
/// `server.trust_forwarded_for` is on.
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

/// The credentials after the scheme word of `Authorization`, if the scheme is `scheme`
/// (case-insensitive, as HTTP has it).
pub fn credentials<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (given, rest) = value.trim().split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Sender::from_request_parts(parts, state).await?.check(state).await
    }
}

impl FromRequestParts<AppState> for Sender {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = credentials(&parts.headers, "Bearer").ok_or_else(ApiError::unauthorized)?;
        let claims = state.tokens.verify(token, state.clock.now_secs()).map_err(|e| {
            tracing::debug!(error = %e, "bearer token refused");
            ApiError::unauthorized()
        })?;
        Ok(Self(claims))
    }
}

impl Sender {
    /// A token already verified (its signature and expiry), as another extractor read it.
    pub fn from_claims(claims: Claims) -> Self {
        Self(claims)
    }

    /// What the store says of the token now: the caller, or 401.
    pub async fn check(&self, state: &AppState) -> Result<Caller, ApiError> {
        let Self(claims) = self;
        let subject =
            state.subjects.check(&claims.sub, &claims.jti).await.map_err(|e| match e.outage() {
                Some(outage) => ApiError::unavailable(outage),
                None => ApiError::internal(anyhow::anyhow!("checking a token failed: {e:#}")),
            })?;
        match subject {
            Some(s) if !s.revoked && s.user_id == claims.uid => {
                Ok(Caller { username: claims.sub.clone(), role: s.role, claims: claims.clone() })
            }
            _ => Err(ApiError::unauthorized()),
        }
    }

    /// The token, for the store to check as it writes.
    pub fn credential(&self) -> Credential {
        credential(&self.0)
    }
}

impl Caller {
    /// The caller's token, for the store to check again as it writes.
    pub fn credential(&self) -> Credential {
        credential(&self.claims)
    }
}

fn credential(claims: &Claims) -> Credential {
    Credential {
        username: claims.sub.clone(),
        user_id: claims.uid.clone(),
        jti: claims.jti.clone(),
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.role == Role::Admin {
            Ok(Self(caller))
        } else {
            Err(ApiError::forbidden("This request requires an admin account."))
        }
    }
}

impl FromRequestParts<AppState> for Monitor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(key) = credentials(&parts.headers, "Apikey") {
            let expected = state.config.auth.api_key.expose();
            return if !expected.is_empty() && constant_time_eq(key.as_bytes(), expected.as_bytes())
            {
                Ok(Self)
            } else {
                Err(ApiError::unauthorized())
            };
        }
        if state.store.health().down().is_some_and(|d| d.unreachable()) {
            // The database that knows of revocations is out of reach: a token with a good
            // signature may still read health and metrics, so monitoring sees the outage
            // rather than a timeout.
            let token = credentials(&parts.headers, "Bearer").ok_or_else(ApiError::unauthorized)?;
            state
                .tokens
                .verify(token, state.clock.now_secs())
                .map_err(|_| ApiError::unauthorized())?;
            return Ok(Self);
        }
        Caller::from_request_parts(parts, state).await.map(|_| Self)
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.config.server.trust_forwarded_for {
            let forwarded = parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
            let first = forwarded.and_then(|v| v.split(',').next()).map(str::trim);
            if let Some(first) = first.filter(|f| !f.is_empty()) {
                return Ok(Self(first.to_owned()));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        Ok(Self(peer.unwrap_or_else(|| "unknown".to_owned())))
    }
}

pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
