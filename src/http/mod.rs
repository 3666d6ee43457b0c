//! The HTTP front: the On-Premises routes, a file per resource, and the middleware every
//! request passes (request id, tracing, panic catching, body limit, trailing-slash tolerance),
//! and `Idempotency-Key` handling on the message routes.
//! Everything a handler answers, success or error, is in the On-Premises envelope.

mod account;
mod auth;
mod backup;
mod body;
mod certificates;
mod cloud;
mod console;
mod contacts;
mod documents;
mod error;
mod exposition;
mod health;
mod idempotency;
mod media;
mod messages;
mod metrics;
mod photo;
mod profile;
mod providers;
mod registration;
mod reply;
mod sandbox;
mod services;
mod settings;
mod stickerpacks;
mod users;
mod webhook;
pub use webhook::sweep as sweep_cloud_webhooks;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use premise_base::Clock;
use premise_engine::{Enqueuer, Metrics, NodeView, Retention, SettingsCache};
use premise_store::Store;
use premise_upstream::cloud::CloudClient;
use premise_upstream::sandbox::SandboxWorld;
use premise_upstream::{StatusReports, Upstream};
use premise_wire::ErrorCode;
use tower::Layer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use error::ApiError;
pub use metrics::{HttpMetrics, open_routes as metrics_routes};

use crate::auth::{Accounts, LoginThrottle, SubjectChecks, Tokens};
use crate::config::Config;

/// What handlers share: one pointer to [`AppServices`], cloned for every extractor and
/// middleware of every request (cloning the services themselves, two dozen reference counts,
/// took 7% of the server's CPU under load). All durable state is in the store.
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppServices>);

impl AppState {
    pub fn new(services: AppServices) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppServices;

    fn deref(&self) -> &AppServices {
        &self.0
    }
}

/// The services behind [`AppState`].
#[derive(Debug)]
pub struct AppServices {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub accounts: Accounts,
    pub tokens: Arc<Tokens>,
    /// Keeps short secrets (the two-step PIN, registration codes) as keyed hashes.
    pub codes: Arc<crate::auth::Codes>,
    /// Whether tokens are still good, asked of the store in batches.
    pub subjects: SubjectChecks,
    pub throttle: LoginThrottle,
    /// Set when shutdown begins: `/readyz` fails first so load balancers move away.
    pub draining: Arc<AtomicBool>,
    pub enqueuer: Enqueuer,
    pub settings: SettingsCache,
    pub nodes: NodeView,
    /// Where messages are delivered: asked about templates and contacts.
    pub upstream: Arc<dyn Upstream>,
    /// The pipeline's counters and this process's HTTP counters, for `/metrics`.
    pub metrics: Arc<Metrics>,
    pub http_metrics: Arc<HttpMetrics>,
    /// Where the statuses the Cloud API's webhooks carry go, as every upstream's do: the
    /// engine's status recorder.
    pub statuses: Arc<dyn StatusReports>,
    /// Deletes what is finished (`PUT /v1/services/message/gc`).
    pub retention: Retention,
    /// The sandbox's state, for its admin endpoints; `None` with another upstream.
    pub sandbox: Option<Arc<SandboxWorld>>,
    /// The Cloud API, for its webhooks (media downloads); `None` with another upstream.
    pub cloud: Option<Arc<CloudClient>>,
    /// Customers this process has seen in Cloud webhooks, as last kept: what repeats what is
    /// known is not written again.
    pub seen_customers: webhook::SeenCustomers,
    /// The Cloud webhooks this process is processing now, each by one task at a time.
    pub webhooks_in_progress: webhook::InProgress,
    pub clock: Clock,
    /// What HTTPS is served with (`/v1/certificates/external`).
    pub certs: Arc<crate::certificates::ServerCerts>,
    /// The webhook client (`/v1/certificates/webhooks/ca` changes what it trusts).
    pub webhook_http: premise_engine::WebhookHttp,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole API as one service, under `server.path_prefix` if set (the load balancer probes
/// `/healthz` and `/readyz` answer at the root as well). Trailing slashes are ignored
/// (`/v1/messages/` is how some of Meta's own Postman requests spell it).
pub fn app(state: AppState) -> NormalizePath<Router> {
    let body_limit = state.config.server.body_limit_bytes;
    let prefix = state.config.server.path_prefix.clone();
    // Everything that needs the database; health, probes and metrics answer during an outage.
    let needs_database =
        Router::new()
            .merge(users::routes())
            // Both send endpoints honour `Idempotency-Key`.
            .merge(messages::routes().merge(cloud::routes()).route_layer(
                axum::middleware::from_fn_with_state(state.clone(), idempotency::guard),
            ))
            .merge(media::routes())
            .merge(cloud::media_routes().layer(DefaultBodyLimit::max(
                premise_wire::media::MAX_MEDIA_BYTES as usize + 65_536,
            )))
            .merge(contacts::routes())
            .merge(settings::routes())
            .merge(account::routes())
            .merge(services::routes())
            .merge(profile::routes())
            .merge(certificates::routes())
            .merge(stickerpacks::routes())
            .merge(backup::routes())
            .merge(providers::routes())
            .merge(photo::routes())
            .merge(registration::routes())
            .merge(sandbox::routes())
            .merge(webhook::routes())
            .merge(console::routes())
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                health::refuse_while_unreachable,
            ));
    let api = Router::new()
        .merge(needs_database)
        .merge(health::routes())
        .merge(health::probes())
        .merge(metrics::routes())
        .method_not_allowed_fallback(method_not_allowed);
    let routes = if prefix.is_empty() {
        api
    } else {
        Router::new().nest(&prefix, api).merge(health::probes())
    };
    let router = routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal(anyhow::anyhow!("a request handler panicked")).into_response()
        }))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, RandomRequestId));
    NormalizePathLayer::trim_trailing_slash().layer(router)
}

/// On every answer `X-Content-Type-Options: nosniff` (a browser never guesses a type, so an
/// uploaded file served back cannot become a page), and on every answer to a request with
/// credentials `Cache-Control: no-store` (no proxy or browser keeps what an account saw).
async fn security_headers(request: Request, next: axum::middleware::Next) -> Response {
    let credentials = request.headers().contains_key(axum::http::header::AUTHORIZATION);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(axum::http::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if credentials {
        headers.insert(axum::http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A random UUID for each request without an `x-request-id` of its own, from the ids' pool of
/// randomness (`tower_http`'s `MakeRequestUuid` made a system call for each).
#[derive(Debug, Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = premise_engine::random_uuid().to_string();
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// An unknown path: in Cloud's envelope when it is one of the Cloud dialect's (it starts with a
/// Graph version or an object id), in On-Premises' otherwise.
async fn not_found(State(state): State<AppState>, uri: Uri) -> Response {
    let path = uri.path();
    let within = path.strip_prefix(state.config.server.path_prefix.as_str()).unwrap_or(path);
    let first = within.trim_start_matches('/').split('/').next().unwrap_or_default();
    let cloud = cloud::is_graph_version(first)
        || (!first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()));
    if cloud { cloud::unknown_path(within) } else { not_found_path(path).into_response() }
}

fn not_found_path(path: &str) -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFound, format!("Unknown path {path}"))
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    ApiError::new(
        ErrorCode::InvalidRequest,
        format!("Method {method} is not allowed on {}", uri.path()),
    )
    .with_status(StatusCode::METHOD_NOT_ALLOWED)
    .into_response()
}
