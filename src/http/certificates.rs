//! Certificates (admin), as On-Premises took them, each a PEM text body:
//!
//! - `POST /v1/certificates/external`: a bundle (private key, certificate, CA chain) that
//!   HTTPS is served with from then on, on every replica, without a restart (see
//!   [`crate::certificates`]); 201. `GET /v1/certificates/external/ca` answers its CA chain.
//! - `GET/POST/DELETE /v1/certificates/webhooks/ca`: a CA the webhook client trusts besides the
//!   public ones, for an `https` webhook URL signed by a private CA (see
//!   [`premise_engine::webhook_http`]).
//!
//! A PEM that is not what is asked for is 400/1009 with the reason; nothing changes.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use premise_engine::webhook_http::{WEBHOOKS_CA_DOCUMENT, check_ca};
use premise_wire::{ErrorCode, Rejection};
use serde_json::json;

use super::auth::Admin;
use super::documents::{change, read};
use super::reply::reply_empty;
use super::{ApiError, AppState};
use crate::certificates::{BundleError, EXTERNAL_DOCUMENT, parse_bundle};

const PEM: &str = "application/x-pem-file";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/certificates/external", post(upload_external))
        .route("/v1/certificates/external/ca", get(external_ca))
        .route(
            "/v1/certificates/webhooks/ca",
            get(webhooks_ca).post(upload_webhooks_ca).delete(delete_webhooks_ca),
        )
}

/// The body as PEM text.
async fn pem_body(state: &AppState, request: Request) -> Result<String, ApiError> {
    let bytes = super::body::read(request, state).await?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| Rejection::invalid("certificate", "PEM text is ASCII"))?;
    if text.trim().is_empty() {
        return Err(Rejection::missing("certificate").into());
    }
    Ok(text)
}

async fn upload_external(
    State(state): State<AppState>,
    Admin(admin): Admin,
    request: Request,
) -> Result<Response, ApiError> {
    let pem = pem_body(&state, request).await?;
    let refused = |why: BundleError| Rejection::invalid("certificate", why.to_string());
    let bundle = parse_bundle(&pem).map_err(refused)?;
    change(&state, EXTERNAL_DOCUMENT, |_| Ok(json!({ "pem": pem, "ca": bundle.ca_pem }))).await?;
    state.certs.install(Some(&pem)).map_err(refused)?;
    tracing::info!(by = %admin.username, "HTTPS certificate uploaded");
    Ok(reply_empty(StatusCode::CREATED))
}

async fn external_ca(State(state): State<AppState>, _admin: Admin) -> Result<Response, ApiError> {
    let stored = read(&state, EXTERNAL_DOCUMENT).await?.0;
    match stored["ca"].as_str() {
        Some(ca) => Ok(([(CONTENT_TYPE, PEM)], ca.to_owned()).into_response()),
        None => Err(ApiError::new(ErrorCode::ResourceNotFound, "no certificate was uploaded")),
    }
}

async fn webhooks_ca(State(state): State<AppState>, _admin: Admin) -> Result<Response, ApiError> {
    let stored = read(&state, WEBHOOKS_CA_DOCUMENT).await?.0;
    match stored["pem"].as_str() {
        Some(pem) => Ok(([(CONTENT_TYPE, PEM)], pem.to_owned()).into_response()),
        None => Err(ApiError::new(ErrorCode::ResourceNotFound, "no webhook CA was uploaded")),
    }
}

async fn upload_webhooks_ca(
    State(state): State<AppState>,
    Admin(admin): Admin,
    request: Request,
) -> Result<Response, ApiError> {
    let pem = pem_body(&state, request).await?;
    check_ca(&pem).map_err(|why| Rejection::invalid("certificate", why.to_string()))?;
    change(&state, WEBHOOKS_CA_DOCUMENT, |_| Ok(json!({ "pem": pem }))).await?;
    state
        .webhook_http
        .trust(Some(&pem))
        .map_err(|why| Rejection::invalid("certificate", why.to_string()))?;
    tracing::info!(by = %admin.username, "webhook CA uploaded");
    Ok(reply_empty(StatusCode::OK))
}

async fn delete_webhooks_ca(
    State(state): State<AppState>,
    Admin(admin): Admin,
) -> Result<Response, ApiError> {
    state.store.delete_document(WEBHOOKS_CA_DOCUMENT).await?;
    state.webhook_http.trust(None).map_err(ApiError::internal)?;
    tracing::info!(by = %admin.username, "webhook CA deleted");
    Ok(reply_empty(StatusCode::OK))
}
