//! Start-up and shutdown of `premise serve`: open and migrate the store, make sure the default
//! admin exists, agree on the token signing key, serve until SIGTERM/SIGINT, then drain.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use axum::ServiceExt;
use axum::extract::Request;
use axum::serve::ListenerExt;
use premise_base::Clock;
use premise_engine::Engine;
use premise_store::Store;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::auth::{Accounts, LoginThrottle, SubjectChecks, Tokens};
use crate::certificates::ServerCerts;
use crate::config::{Config, redact_url};
use crate::http::{AppServices, AppState, app, metrics_routes};
use crate::listener::{Incoming, Tls};

/// Name of the generated token signing key in the store's secrets.
const SIGNING_KEY: &str = "token_signing_key";

/// Opens the configured store, applies migrations and creates the default admin if missing.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.database.url.expose();
    let store = premise_store::connect(url, &config.store_options())
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(url)))?;
    store.migrate().await.context("cannot migrate the database")?;
    Accounts::new(store.clone(), config.password_hasher(), Clock::system())
        .ensure_default_admin()
        .await?;
    tracing::info!(database = %redact_url(url), backend = ?store.backend(), "database ready");
    Ok(store)
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    // The listeners first: an address in use fails before the database is created or touched.
    let listen = config.listen_addr().context("server.listen")?;
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!(
            "server.listen: cannot listen on {listen} (another process on that port? set \
             PREMISE_LISTEN or --listen to another address)"
        )
    })?;
    let metrics_listener = match config.metrics.listen.as_str() {
        "" => None,
        addr => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("metrics.listen: cannot listen on {addr}"))?,
        ),
    };
    let store = open_store(&config).await?;
    let secret = match config.auth.token_secret.expose() {
        "" => {
            let mut candidate = [0u8; 32];
            OsRng.fill_bytes(&mut candidate);
            store.secret_or_init(SIGNING_KEY, &candidate).await?
        }
        configured => configured.as_bytes().to_vec(),
    };
    let lifetime =
        i64::try_from(config.auth.token_lifetime_secs).context("auth.token_lifetime_secs")?;
    let node = node_name(&config.node.name);
    let clock = Clock::system();
    let upstream = crate::upstream::prepare(&config, &store, &node, &clock).await?;
    let mut engine =
        Engine::start(store.clone(), config.engine(node.clone()), clock.clone(), upstream.factory)?;
    tracing::info!(%node, upstream = ?config.upstream.kind, "outbound pipeline started");
    let config = Arc::new(config);
    let files = match (config.server.tls_cert.as_str(), config.server.tls_key.as_str()) {
        ("", _) | (_, "") => None,
        (cert, key) => Some((cert, key)),
    };
    let certs = ServerCerts::new(files)?;
    engine.run_until_shutdown({
        let (certs, store) = (certs.clone(), store.clone());
        move |stop| certs.follow(store, stop)
    });
    let state = AppState::new(AppServices {
        certs: certs.clone(),
        webhook_http: engine.webhook_http.clone(),
        enqueuer: engine.enqueuer.clone(),
        settings: engine.settings.clone(),
        nodes: engine.nodes.clone(),
        upstream: engine.upstream.clone(),
        statuses: Arc::new(engine.recorder.clone()),
        retention: engine.retention.clone(),
        sandbox: upstream.sandbox,
        cloud: upstream.cloud,
        seen_customers: Default::default(),
        webhooks_in_progress: Default::default(),
        metrics: engine.metrics.clone(),
        http_metrics: Arc::default(),
        accounts: Accounts::new(store.clone(), config.password_hasher(), clock.clone()),
        throttle: LoginThrottle::new(
            store.clone(),
            config.auth.max_failed_logins,
            config.auth.failed_login_window_secs,
        ),
        tokens: Arc::new(Tokens::new(&secret, lifetime)),
        codes: Arc::new(crate::auth::Codes::new(&secret)),
        subjects: SubjectChecks::start(store.clone()),
        draining: Arc::new(AtomicBool::new(false)),
        store,
        config: config.clone(),
        clock,
    });

    let tls = Tls { acceptor: certs.acceptor()?, certs, required: files.is_some() };
    let scheme = if tls.required { "https" } else { "http" };
    let local = listener.local_addr()?;
    let listener = Incoming::new(listener, tls, config.connection_limits())?;
    tracing::info!(prefix = %config.server.path_prefix, "listening on {scheme}://{local}");

    // The optional unauthenticated metrics listener serves until the engine stops (through the
    // drain, so scrapes see it).
    if let Some(metrics) = metrics_listener {
        tracing::info!("metrics on http://{}/metrics", metrics.local_addr()?);
        let router = metrics_routes(state.clone());
        engine.run_until_shutdown(move |stop| async move {
            // Not a graceful shutdown: a scraper's kept-alive connection must not hold the
            // process; a scrape cut short is retried by the scraper.
            tokio::select! {
                served = axum::serve(metrics, router).into_future() => {
                    if let Err(e) = served {
                        tracing::error!(error = %e, "the metrics listener failed");
                    }
                }
                () = stop.cancelled() => {}
            }
        });
    }

    // Cloud webhooks kept but left unprocessed by a replica that died, processed here.
    engine.run_until_shutdown({
        let state = state.clone();
        move |stop| async move {
            tokio::select! {
                () = crate::http::sweep_cloud_webhooks(state) => {}
                () = stop.cancelled() => {}
            }
        }
    });

    let draining = state.draining.clone();
    let drain_delay = Duration::from_millis(config.server.drain_delay_ms);
    let stop = Arc::new(Notify::new());
    let service = app(state);
    let server = axum::serve(
        listener.tap_io(|_| {}),
        ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(service),
    )
    .with_graceful_shutdown({
        let stop = stop.clone();
        async move {
            shutdown_signal().await;
            draining.store(true, Ordering::Relaxed);
            if !drain_delay.is_zero() {
                tracing::info!(?drain_delay, "draining: /readyz fails, still serving");
                tokio::time::sleep(drain_delay).await;
            }
            tracing::info!("shutting down: no new connections, finishing requests in flight");
            stop.notify_one();
        }
    })
    .into_future();

    // Graceful, but bounded: after the signal, in-flight requests get `shutdown_timeout`.
    let timeout = config.shutdown_timeout();
    tokio::select! {
        result = server => result.context("HTTP server failed")?,
        () = async { stop.notified().await; tokio::time::sleep(timeout).await } => {
            tracing::warn!(?timeout, "requests still in flight after the shutdown timeout; exiting anyway");
        }
    }
    tracing::info!("HTTP stopped; handing back shards");
    engine.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// The configured node name, or `<hostname>:<random>` like On-Premises' `<hostname>:<container-id>`.
fn node_name(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_owned();
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "premise".to_owned());
    format!("{host}:{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
