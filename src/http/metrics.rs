//! Monitoring: `GET /metrics` (Prometheus text by default, `?format=json` for the On-Premises
//! JSON), `GET /v1/stats/app` and `/v1/stats/db` (On-Premises JSON by default,
//! `?format=prometheus`), all for callers with a token or the API key; and the middleware that
//! counts every request by route and status. `/metrics` can also be served without
//! authentication on a listener of its own (`metrics.listen`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use premise_engine::NodeStats;
use premise_engine::metrics::{Family, Histogram, Kind};
use premise_wire::ErrorCode;
use serde::Deserialize;
use serde_json::json;

use super::auth::{Admin, Monitor};
use super::exposition::{self, PROMETHEUS_CONTENT_TYPE};
use super::reply::reply;
use super::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(protected_metrics))
        .route("/v1/stats/app", get(stats_app))
        .route("/v1/stats/db", get(stats_db))
        .route("/v1/stats/app/internal", get(stats_app_internal))
        .route("/v1/stats/db/internal", get(stats_db_internal))
}

/// The router of the separate, unauthenticated metrics listener.
pub fn open_routes(state: AppState) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(state)
}

/// Requests by route (the matched pattern, so ids do not make new series) and status.
#[derive(Debug)]
pub struct HttpMetrics {
    started: Instant,
    in_flight: AtomicI64,
    routes: RwLock<HashMap<(String, String), Arc<RouteStats>>>,
}

#[derive(Debug)]
struct RouteStats {
    /// Indexed by status code - 100.
    statuses: Box<[AtomicU64]>,
    latency: Histogram,
}

impl Default for RouteStats {
    fn default() -> Self {
        Self {
            statuses: (100..600).map(|_| AtomicU64::new(0)).collect(),
            latency: Histogram::default(),
        }
    }
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self { started: Instant::now(), in_flight: AtomicI64::new(0), routes: RwLock::default() }
    }
}

impl HttpMetrics {
    fn route(&self, method: &str, route: &str) -> Arc<RouteStats> {
        let key = (method.to_owned(), route.to_owned());
        if let Some(stats) = self.routes.read().expect("metrics lock").get(&key) {
            return stats.clone();
        }
        self.routes.write().expect("metrics lock").entry(key).or_default().clone()
    }

    fn families(&self) -> Vec<Family> {
        let mut requests = Family::new(
            "premise_http_requests_total",
            "HTTP requests answered, by route and status",
            Kind::Counter,
        );
        let mut latency = Family::new(
            "premise_http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            Kind::Histogram,
        );
        let routes = self.routes.read().expect("metrics lock");
        let mut keys: Vec<_> = routes.keys().collect();
        keys.sort();
        for key in keys {
            let stats = &routes[key];
            let (method, route) = (key.0.clone(), key.1.clone());
            for (i, count) in stats.statuses.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    requests = requests.with(
                        vec![
                            ("method", method.clone()),
                            ("route", route.clone()),
                            ("status", (i + 100).to_string()),
                        ],
                        count as f64,
                    );
                }
            }
            latency =
                latency.with_histogram(vec![("method", method), ("route", route)], &stats.latency);
        }
        vec![
            requests,
            latency,
            Family::new(
                "premise_http_requests_in_flight",
                "HTTP requests being answered",
                Kind::Gauge,
            )
            .with(vec![], self.in_flight.load(Ordering::Relaxed) as f64),
            Family::new(
                "premise_uptime_seconds",
                "Seconds since this replica started",
                Kind::Gauge,
            )
            .with(vec![], self.started.elapsed().as_secs_f64().floor()),
        ]
    }
}

/// Counts the request once answered. Unmatched paths share one `route` label.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let metrics = &state.http_metrics;
    let in_flight = InFlight::start(&metrics.in_flight);
    let started = Instant::now();
    let response = next.run(request).await;
    drop(in_flight);
    let stats = metrics.route(&method, &route);
    let index = usize::from(response.status().as_u16()).saturating_sub(100).min(499);
    stats.statuses[index].fetch_add(1, Ordering::Relaxed);
    stats.latency.observe(started.elapsed());
    response
}

/// Counts a request in flight until dropped, also when the client goes away mid-request.
struct InFlight<'a>(&'a AtomicI64);

impl<'a> InFlight<'a> {
    fn start(gauge: &'a AtomicI64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Deserialize)]
pub struct FormatQuery {
    format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Prometheus,
    Json,
}

fn format(query: &FormatQuery, default: Format) -> Result<Format, ApiError> {
    match query.format.as_deref() {
        None | Some("") => Ok(default),
        Some("prometheus") => Ok(Format::Prometheus),
        Some("json") => Ok(Format::Json),
        Some(other) => Err(ApiError::new(
            ErrorCode::ParameterValueInvalid,
            format!("format must be prometheus or json, not {other:?}"),
        )),
    }
}

/// Everything this replica measures: HTTP, the pipeline, and who it is.
fn all_families(state: &AppState) -> Vec<Family> {
    let mut families = state.http_metrics.families();
    families.extend(state.metrics.families(&state.nodes));
    families.push(
        Family::new("premise_build_info", "Version and node name of this replica", Kind::Gauge)
            .with(
                vec![
                    ("version", env!("CARGO_PKG_VERSION").to_owned()),
                    ("node", state.nodes.me().to_owned()),
                ],
                1.0,
            ),
    );
    families
}

fn render(
    families: &[Family],
    format: Format,
    wrap: impl FnOnce(serde_json::Value) -> serde_json::Value,
) -> Response {
    match format {
        Format::Prometheus => (
            StatusCode::OK,
            [(CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
            exposition::prometheus(families),
        )
            .into_response(),
        Format::Json => reply(StatusCode::OK, wrap(exposition::json(families))),
    }
}

async fn metrics(
    State(state): State<AppState>,
    Query(query): Query<FormatQuery>,
) -> Result<Response, ApiError> {
    let format = format(&query, Format::Prometheus)?;
    Ok(render(&all_families(&state), format, |m| json!({ "metrics": m })))
}

async fn protected_metrics(
    _: Monitor,
    state: State<AppState>,
    query: Query<FormatQuery>,
) -> Result<Response, ApiError> {
    metrics(state, query).await
}

/// On-Premises' Coreapp statistics, under their names where the sources show them. With
/// several replicas, every live one's figures keyed by node, as On-Premises multiconnect
/// answered (`stats.app.<node>`); each replica's are as it published them with its last
/// heartbeat (a few seconds old), this one's live.
async fn stats_app(
    _: Monitor,
    State(state): State<AppState>,
    Query(query): Query<FormatQuery>,
) -> Result<Response, ApiError> {
    let format = format(&query, Format::Json)?;
    Ok(per_node(&replicas(&state), format, "app", |_, s| app_families(s)))
}

fn app_families(s: &NodeStats) -> Vec<Family> {
    let status_change =
        |result: &str| vec![("result", result.to_owned()), ("type", "status_change".to_owned())];
    vec![
        Family::new("callback_queue_size", "Current callback queue size", Kind::Gauge)
            .with(vec![], s.callback_queue_size as f64),
        Family::new("callback_requests", "Callback requests by result", Kind::Counter)
            .with(status_change("success"), s.callback_posts_ok as f64)
            .with(status_change("failure"), s.callback_posts_failed as f64),
        Family::new(
            "callback_requests_duration_ms_count",
            "Callback requests timed",
            Kind::Counter,
        )
        .with(vec![("type", "status_change".to_owned())], s.callback_posts_timed as f64),
        Family::new(
            "callback_requests_duration_ms_sum",
            "Callback request time, ms",
            Kind::Counter,
        )
        .with(vec![("type", "status_change".to_owned())], s.callback_ms_sum),
        Family::new(
            "message_queue_size",
            "Messages accepted and not yet acknowledged",
            Kind::Gauge,
        )
        .with(vec![], s.message_queue_size as f64),
        Family::new("messages_sent", "Messages the upstream acknowledged", Kind::Counter)
            .with(vec![], s.messages_sent as f64),
        Family::new("messages_failed", "Messages failed for good", Kind::Counter)
            .with(vec![], s.messages_failed as f64),
    ]
}

/// Database statistics: whether it answers, its backend, how long a query takes, and what
/// waits in it; per node as `/v1/stats/app`.
async fn stats_db(
    _: Monitor,
    State(state): State<AppState>,
    Query(query): Query<FormatQuery>,
) -> Result<Response, ApiError> {
    let format = format(&query, Format::Json)?;
    let started = Instant::now();
    let ready = state.store.ready().await.unwrap_or(false);
    let ping_us = started.elapsed().as_micros() as f64;
    let backlog = state.store.backlog().await?;
    let backend = format!("{:?}", state.store.backend()).to_ascii_lowercase();
    let me = state.nodes.me().to_owned();
    Ok(per_node(&replicas(&state), format, "db", |node, s| {
        // Another replica is alive by its heartbeat, which needed the database.
        let (ready, ping) = if node == me { (ready, Some(ping_us)) } else { (true, None) };
        let mut duration = Family::new(
            "db_request_duration_us",
            "Time of a database round trip, microseconds",
            Kind::Gauge,
        )
        .with(vec![("request", "heartbeat".to_owned())], s.db_heartbeat_us as f64);
        if let Some(ping) = ping {
            duration = duration.with(vec![("request", "ready".to_owned())], ping);
        }
        vec![
            Family::new(
                "db_ready",
                "1 when the database answers with every migration applied",
                Kind::Gauge,
            )
            .with(vec![("backend", backend.clone())], f64::from(u8::from(ready))),
            duration,
            Family::new("db_queued_messages", "Messages queued in the database", Kind::Gauge)
                .with(vec![], backlog.queued as f64),
            Family::new(
                "db_pending_callbacks",
                "Status callbacks waiting in the database",
                Kind::Gauge,
            )
            .with(vec![], backlog.callbacks as f64),
        ]
    }))
}

/// Everything this replica measures (HTTP by route, the pipeline, the build), as `/metrics`
/// has it, keyed by node: `{"stats":{"internal_app":{"<node>":{...}}}}` (admin).
async fn stats_app_internal(
    _admin: Admin,
    State(state): State<AppState>,
    Query(query): Query<FormatQuery>,
) -> Result<Response, ApiError> {
    let format = format(&query, Format::Json)?;
    let me = state.nodes.me().to_owned();
    Ok(render(&all_families(&state), format, |v| json!({ "stats": { "internal_app": { me: v } } })))
}

/// The rows of every table and the database's backend: `{"stats":{"internal_db":{...}}}`
/// (admin).
async fn stats_db_internal(
    _admin: Admin,
    State(state): State<AppState>,
    Query(query): Query<FormatQuery>,
) -> Result<Response, ApiError> {
    let format = format(&query, Format::Json)?;
    let backend = format!("{:?}", state.store.backend()).to_ascii_lowercase();
    let mut rows = Family::new("db_table_rows", "Rows in each table", Kind::Gauge);
    for table in state.store.row_counts().await? {
        let labels = vec![("backend", backend.clone()), ("table", table.table.to_owned())];
        rows = rows.with(labels, table.rows as f64);
    }
    Ok(render(&[rows], format, |v| json!({ "stats": { "internal_db": v } })))
}

/// Every live replica's figures, this one's live, sorted by node.
fn replicas(state: &AppState) -> Vec<(String, NodeStats)> {
    let me = state.nodes.me();
    let mut nodes: Vec<(String, NodeStats)> = state
        .nodes
        .stats()
        .into_iter()
        .filter(|(node, _)| node != me)
        .filter_map(|(node, stats)| Some((node, stats?)))
        .collect();
    nodes.push((me.to_owned(), state.metrics.node_stats()));
    nodes.sort_by(|a, b| a.0.cmp(&b.0));
    nodes
}

/// `{"stats":{"<section>":{...}}}` for one replica; with several, `{"stats":{"<section>":
/// {"<node>":{...},...}}}`, and in Prometheus text each sample labelled with its `node`.
fn per_node(
    nodes: &[(String, NodeStats)],
    format: Format,
    section: &str,
    families: impl Fn(&str, &NodeStats) -> Vec<Family>,
) -> Response {
    if let [(node, stats)] = nodes {
        return render(&families(node, stats), format, |v| json!({ "stats": { section: v } }));
    }
    match format {
        Format::Json => {
            let by_node: serde_json::Map<String, serde_json::Value> = nodes
                .iter()
                .map(|(node, stats)| (node.clone(), exposition::json(&families(node, stats))))
                .collect();
            reply(StatusCode::OK, json!({ "stats": { section: by_node } }))
        }
        Format::Prometheus => {
            let mut merged: Vec<Family> = Vec::new();
            for (node, stats) in nodes {
                for family in families(node, stats) {
                    let samples = family.samples.into_iter().map(|mut sample| {
                        sample.labels.insert(0, ("node", node.clone()));
                        sample
                    });
                    match merged.iter_mut().find(|f| f.name == family.name) {
                        Some(existing) => existing.samples.extend(samples),
                        None => merged.push(Family { samples: samples.collect(), ..family }),
                    }
                }
            }
            render(&merged, format, |v| v)
        }
    }
}
