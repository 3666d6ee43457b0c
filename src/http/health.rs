//! Health: the On-Premises `GET /v1/health` for integrations and monitoring, and the
//! unauthenticated `/healthz` (the process is alive) and `/readyz` (send traffic here) for load
//! balancers and orchestrators.

use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use premise_engine::CLOCK_OFFSET_WARNING_MS;
use premise_store::Down;
use premise_upstream::Gateway;
use premise_wire::{ErrorCode, ErrorDetail};
use serde_json::json;

use super::auth::{Admin, Monitor};
use super::reply::reply;
use super::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/health", get(health)).route("/v1/support", get(support))
}

/// `GET /v1/support` (admin): what a support engineer asks first, `{"support":{...}}`: the
/// version, this node and every live one, the upstream, the database backend, the shard
/// count and the registered number with its verified name.
async fn support(_admin: Admin, State(state): State<AppState>) -> Result<Response, ApiError> {
    let account = state.store.account().await?;
    let registration = state.store.document(super::registration::REGISTRATION).await?;
    let registration: serde_json::Value =
        registration.and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default();
    let support = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "api_version": premise_wire::API_VERSION,
        "node": state.nodes.me(),
        "nodes": state.nodes.nodes(),
        "upstream": format!("{:?}", state.config.upstream.kind).to_ascii_lowercase(),
        "database": format!("{:?}", state.store.backend()).to_ascii_lowercase(),
        "shards": account.shards,
        "registration": {
            "state": registration.get("state").cloned().unwrap_or_else(|| json!("unregistered")),
            "number": registration.get("number").cloned().unwrap_or_default(),
            "vname": registration.get("vname").cloned().unwrap_or_default(),
        },
    });
    Ok(reply(StatusCode::OK, json!({ "support": support })))
}

/// The load balancer's and orchestrator's probes, unauthenticated.
pub fn probes() -> Router<AppState> {
    Router::new().route("/healthz", get(alive)).route("/readyz", get(ready))
}

/// `{"health":{"gateway_status": ...}}`: `connected` when the database answers with every
/// migration applied and the upstream takes sends (with the Cloud API: it answers and takes
/// the token; otherwise `disconnected` with an `errors` entry saying why), `uninitialized` while the schema is behind (On-Premises' word for a
/// database being initialised), `disconnected` when the database cannot be reached or cannot
/// take writes (disk full, ...), with an `errors` entry saying why. With several replicas
/// alive, the On-Premises multiconnect shape: one entry per node with its `gateway_status` and
/// `role` (the first node by name is the `primary_master`).
async fn health(_: Monitor, State(state): State<AppState>) -> Response {
    let down = match state.store.health().down() {
        Some(down) => Some(down),
        None => match state.store.ready().await {
            Ok(true) => None,
            Ok(false) => {
                let payload = json!({ "health": { "gateway_status": "uninitialized" } });
                return reply(StatusCode::OK, payload);
            }
            Err(e) => {
                tracing::warn!(error = %e, "health check: database unreachable");
                state.store.health().record_failure(&e);
                state.store.health().down()
            }
        },
    };
    let gateway = state.upstream.gateway();
    let status =
        if down.is_some() || gateway != Gateway::Connected { "disconnected" } else { "connected" };
    let mut errors: Vec<ErrorDetail> = down.iter().map(database_error).collect();
    if let Gateway::Disconnected(why) = gateway {
        errors.push(ErrorDetail::new(ErrorCode::ServiceNotReady, why));
    }
    let nodes = state.nodes.nodes();
    if nodes.len() <= 1 {
        let mut payload = json!({ "health": { "gateway_status": status } });
        if !errors.is_empty() {
            payload["errors"] = json!(errors);
        }
        add_cloud(&state, &mut payload);
        add_clock_warning(&state, &mut payload);
        return reply(StatusCode::OK, payload);
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
    let mut payload = json!({ "health": health });
    if !errors.is_empty() {
        payload["errors"] = json!(errors);
    }
    add_cloud(&state, &mut payload);
    add_clock_warning(&state, &mut payload);
    reply(StatusCode::OK, payload)
}

/// `"warnings"` beside `health` when this replica's clock is out of step with the database's
/// (by more than [`CLOCK_OFFSET_WARNING_MS`]): the gateway still works (leases follow the
/// database's clock), but what follows this replica's own clock drifts with it.
fn add_clock_warning(state: &AppState, payload: &mut serde_json::Value) {
    let offset = state.nodes.clock_offset_ms();
    if offset.abs() <= CLOCK_OFFSET_WARNING_MS {
        return;
    }
    let (by, way) =
        (offset.unsigned_abs() as f64 / 1000.0, if offset > 0 { "ahead of" } else { "behind" });
    let details = format!(
        "replica {}'s clock is {by:.1} s {way} the database's: leases follow the database's \
         clock, but retry schedules, the sandbox's customer service window and retention follow \
         the replica's; synchronise it (NTP)",
        state.nodes.me()
    );
    payload["warnings"] = json!([{ "code": ErrorCode::GenericError.code(), "title": "Clock out of step", "details": details }]);
}

/// With the Cloud API as upstream, `"cloud"`: the phone number as its last check found it
/// (`display_phone_number`, `verified_name`, `quality_rating`), beside `health`.
fn add_cloud(state: &AppState, payload: &mut serde_json::Value) {
    if let Some(cloud) = &state.cloud {
        let mut number = json!({ "phone_number_id": cloud.settings().phone_number_id });
        if let Some(phone) = cloud.phone() {
            for (key, value) in [
                ("display_phone_number", phone.display_phone_number),
                ("verified_name", phone.verified_name),
                ("quality_rating", phone.quality_rating),
            ] {
                if let Some(value) = value {
                    number[key] = json!(value);
                }
            }
        }
        payload["cloud"] = number;
    }
}

/// 1023 "Database error occurred", saying what and since when.
fn database_error(down: &Down) -> ErrorDetail {
    ErrorDetail::new(
        ErrorCode::DatabaseError,
        format!(
            "{} (for {} s); new messages are refused with 503 until it takes them again",
            down.outage.describe(),
            down.since.elapsed().as_secs()
        ),
    )
}

/// Refuses a request at once with 503/1016 while the database cannot be reached, rather than
/// letting it wait out the connection pool's timeout for a database known to be gone; and
/// answers a request in flight the same way the moment that becomes known. Other outages (a
/// full disk) let requests through: reads still work, and writes fail fast.
pub async fn refuse_while_unreachable(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let mut changes = state.store.health().subscribe();
    let unreachable = async move {
        loop {
            if let Some(down) = changes.borrow_and_update().filter(Down::unreachable) {
                return down.outage;
            }
            if changes.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    };
    tokio::select! {
        biased;
        outage = unreachable => ApiError::unavailable(outage).into_response(),
        response = next.run(request) => response,
    }
}

async fn alive() -> Response {
    reply(StatusCode::OK, json!({ "status": "alive" }))
}

/// 200 when the database answers with every migration applied, takes writes, and the server
/// is not shutting down; 503 otherwise, so a load balancer stops sending before the process stops.
async fn ready(State(state): State<AppState>) -> Result<Response, ApiError> {
    let not_ready = |why: &str| {
        ApiError::new(ErrorCode::ServiceNotReady, why).with_status(StatusCode::SERVICE_UNAVAILABLE)
    };
    if state.draining.load(Ordering::Relaxed) {
        return Err(not_ready("shutting down"));
    }
    if let Some(down) = state.store.health().down() {
        return Err(not_ready(down.outage.describe()));
    }
    match state.store.ready().await {
        Ok(true) => Ok(reply(StatusCode::OK, json!({ "status": "ready" }))),
        Ok(false) => Err(not_ready("database migrations are not applied")),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            state.store.health().record_failure(&e);
            Err(not_ready("database unreachable"))
        }
    }
}
