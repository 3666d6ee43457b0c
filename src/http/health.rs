//! Health: the On-Premises `GET /v1/health` for integrations and monitoring, and the
//! unauthenticated `/healthz` (the process is alive) and `/readyz` (send traffic here) for load
//! balancers and orchestrators.

use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use premise_wire::ErrorCode;
use serde_json::json;

use super::auth::Monitor;
use super::reply::reply;
use super::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/health", get(health))
}

/// The load balancer's and orchestrator's probes, unauthenticated.
pub fn probes() -> Router<AppState> {
    Router::new().route("/healthz", get(alive)).route("/readyz", get(ready))
}

/// `{"health":{"gateway_status": ...}}`: `connected` when the database answers with every
/// migration applied, `uninitialized` while the schema is behind (On-Premises' word for a
/// database being initialised), `disconnected` when the database cannot be reached. With
/// several replicas alive, the On-Premises multiconnect shape: one entry per node with its
/// `gateway_status` and `role` (the first node by name is the `primary_master`).
async fn health(_: Monitor, State(state): State<AppState>) -> Response {
    let status = match state.store.ready().await {
        Ok(true) => "connected",
        Ok(false) => "uninitialized",
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unreachable");
            "disconnected"
        }
    };
    let nodes = state.nodes.nodes();
    if nodes.len() <= 1 {
        return reply(StatusCode::OK, json!({ "health": { "gateway_status": status } }));
    }
    let health: serde_json::Map<String, serde_json::Value> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            // Other replicas are alive by their heartbeat, which they write to the database.
            let gateway_status = if node == state.nodes.me() { status } else { "connected" };
            let role = if i == 0 { "primary_master" } else { "coreapp" };
            (node.clone(), json!({ "gateway_status": gateway_status, "role": role }))
        })
        .collect();
    reply(StatusCode::OK, json!({ "health": health }))
}

async fn alive() -> Response {
    reply(StatusCode::OK, json!({ "status": "alive" }))
}

/// 200 when the database answers with every migration applied and the server is not
/// shutting down; 503 otherwise, so a load balancer stops sending before the process stops.
async fn ready(State(state): State<AppState>) -> Result<Response, ApiError> {
    let not_ready = |why: &str| {
        ApiError::new(ErrorCode::ServiceNotReady, why).with_status(StatusCode::SERVICE_UNAVAILABLE)
    };
    if state.draining.load(Ordering::Relaxed) {
        return Err(not_ready("shutting down"));
    }
    match state.store.ready().await {
        Ok(true) => Ok(reply(StatusCode::OK, json!({ "status": "ready" }))),
        Ok(false) => Err(not_ready("database migrations are not applied")),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            Err(not_ready("database unreachable"))
        }
    }
}
