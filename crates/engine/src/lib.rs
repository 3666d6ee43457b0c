//! The outbound pipeline, between the HTTP front and the upstream:
//!
//! ```text
//! Enqueuer ──group commit──▶ store (messages) ──▶ ShardPool: one worker per leased shard
//!                                                   │ per recipient in order, retry until acked
//!                                                   ▼
//!                         upstream ──acks, statuses──▶ Recorder ──▶ store (callbacks)
//!                                                                     │
//!                                          Dispatcher (per leased shard) ──POST──▶ webhooks.url
//! ```
//!
//! The store is the truth: every in-memory structure here (worker queues, retry timers,
//! cached settings and backlog counts) is a cache that a restarted process rebuilds from it.
//! Each worker follows three layers: one step, a loop, a runner started and stopped with the
//! server through a cancellation token.

mod backlog;
mod config;
mod dispatcher;
mod enqueue;
mod ids;
pub mod lifecycle;
pub mod metrics;
mod pool;
mod probe;
mod recorder;
pub mod retry;
mod sender;
mod settings;

use std::sync::Arc;

use premise_store::Store;
use premise_upstream::{EventSink, Upstream};
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use backlog::Backlog;
pub use config::EngineConfig;
pub use enqueue::{EnqueueError, Enqueuer};
pub use ids::new_message_id;
pub use metrics::Metrics;
pub use pool::NodeView;
pub use recorder::Recorder;
pub use settings::SettingsCache;

/// The running pipeline of one process.
#[derive(Debug)]
pub struct Engine {
    pub enqueuer: Enqueuer,
    pub settings: SettingsCache,
    pub nodes: NodeView,
    pub metrics: Arc<Metrics>,
    /// Stops the shard pool (first at shutdown).
    stop_pool: CancellationToken,
    pool: JoinHandle<()>,
    /// Stops the recorder and the backlog counter (last at shutdown).
    stop_rest: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Builds the upstream once the recorder's sink exists (upstreams report later statuses there).
pub type UpstreamFactory = Box<dyn FnOnce(EventSink) -> anyhow::Result<Arc<dyn Upstream>> + Send>;

impl Engine {
    pub fn start(
        store: Arc<dyn Store>,
        config: EngineConfig,
        upstream: UpstreamFactory,
    ) -> anyhow::Result<Self> {
        let stop_pool = CancellationToken::new();
        let stop_rest = CancellationToken::new();
        let config = Arc::new(config);
        let settings = SettingsCache::new(store.clone());
        // Committed batches, announced to this replica's shard workers. A worker that falls
        // behind the channel notices the gap and reads the store instead.
        let (committed, _) = broadcast::channel(1_024);
        let callbacks_ready = Arc::new(Notify::new());
        let backlog = Backlog::new();
        let metrics = Metrics::new();
        let mut tasks = vec![probe::spawn(store.clone(), stop_rest.clone())];

        let (recorder, recorder_task) = Recorder::start(
            store.clone(),
            settings.clone(),
            callbacks_ready.clone(),
            stop_rest.clone(),
        );
        tasks.push(recorder_task);
        let upstream = upstream(recorder.sink())?;
        tasks.push(backlog.spawn_refresh(store.clone(), config.backlog_refresh, stop_rest.clone()));
        tasks.push(metrics.spawn_refresh(
            store.clone(),
            config.queue_stats_refresh,
            stop_rest.clone(),
        ));
        let (enqueuer, committers) =
            Enqueuer::start(&store, config.clone(), backlog, &committed, &metrics);
        tasks.extend(committers);
        let (nodes, pool_task) = pool::ShardPool {
            store,
            config,
            upstream,
            recorder,
            settings: settings.clone(),
            committed,
            callbacks_ready,
            metrics: metrics.clone(),
        }
        .start(stop_pool.clone());
        Ok(Self {
            enqueuer,
            settings,
            nodes,
            metrics,
            stop_pool,
            pool: pool_task,
            stop_rest,
            tasks,
        })
    }

    /// Stops taking work, lets shard workers finish what is in flight, records what they
    /// learnt, releases their leases so other replicas take over at once, then returns.
    /// Call after the HTTP server has stopped: committers finish the requests still queued.
    pub async fn shutdown(self) {
        drop(self.enqueuer);
        self.stop_pool.cancel();
        let _ = self.pool.await;
        self.stop_rest.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// An error with its causes, for logs.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
