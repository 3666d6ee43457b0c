//! The running pipeline of one process: its parts started in order, and stopped in order.

use std::sync::Arc;

use premise_base::Clock;
use premise_store::Store;
use premise_upstream::{Upstream, UpstreamContext};
use tokio::sync::{Notify, Semaphore, broadcast};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::WebhookHttp;
use crate::dispatcher::{Dispatcher, PERMITS, ShardSet};
use crate::{
    Backlog, EngineConfig, Enqueuer, Metrics, NodeView, Recorder, Retention, SettingsCache,
};
use crate::{pool, probe};

#[derive(Debug)]
pub struct Engine {
    pub enqueuer: Enqueuer,
    pub settings: SettingsCache,
    pub nodes: NodeView,
    pub metrics: Arc<Metrics>,
    /// Where messages are delivered; the HTTP front asks it about templates and contacts.
    pub upstream: Arc<dyn Upstream>,
    /// Records statuses; the HTTP front hands it those the upstream's webhooks carry.
    pub recorder: Recorder,
    /// Deletes what is finished; `PUT /v1/services/message/gc` runs it at once.
    pub retention: Retention,
    /// The webhook client; `/v1/certificates/webhooks/ca` changes the CA it trusts.
    pub webhook_http: WebhookHttp,
    /// Stops the shard pool (first at shutdown).
    stop_pool: CancellationToken,
    pool: JoinHandle<()>,
    /// Stops the webhook dispatcher (once the pool's workers have left their shards).
    stop_dispatcher: CancellationToken,
    dispatcher: JoinHandle<()>,
    /// Stops the recorder, the upstream's background work and the counters (last at shutdown).
    stop_rest: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Builds the upstream once the recorder exists (upstreams report later statuses to it).
pub type UpstreamFactory =
    Box<dyn FnOnce(UpstreamContext) -> anyhow::Result<Arc<dyn Upstream>> + Send>;

impl Engine {
    /// Starts the pipeline on `store`, its time read from `clock`.
    pub fn start(
        store: Arc<dyn Store>,
        config: EngineConfig,
        clock: Clock,
        upstream: UpstreamFactory,
    ) -> anyhow::Result<Self> {
        let stop_pool = CancellationToken::new();
        let stop_dispatcher = CancellationToken::new();
        let stop_rest = CancellationToken::new();
        let config = Arc::new(config);
        let settings = SettingsCache::new(store.clone(), clock.clone());
        // Committed batches, announced to this replica's shard workers. A worker that falls
        // behind the channel notices the gap and reads the store instead.
        let (committed, _) = broadcast::channel(1_024);
        let callbacks_ready = Arc::new(Notify::new());
        let backlog = Backlog::new();
        let metrics = Metrics::new(clock.clone());
        let mut tasks = vec![probe::spawn(store.clone(), clock.clone(), stop_rest.clone())];

        let (recorder, recorder_task) = Recorder::start(
            store.clone(),
            settings.clone(),
            callbacks_ready.clone(),
            clock.clone(),
            stop_rest.clone(),
        );
        tasks.push(recorder_task);
        let upstream = upstream(UpstreamContext {
            statuses: Arc::new(recorder.clone()),
            clock: clock.clone(),
            stop: stop_rest.clone(),
        })?;
        tasks.push(backlog.spawn_refresh(
            store.clone(),
            config.backlog_refresh,
            clock.clone(),
            stop_rest.clone(),
        ));
        tasks.push(metrics.spawn_refresh(
            store.clone(),
            config.queue_stats_refresh,
            stop_rest.clone(),
        ));
        let retention =
            Retention::new(store.clone(), config.retention.clone(), clock.clone(), metrics.clone());
        tasks.push(retention.clone().spawn(config.node.clone(), stop_rest.clone()));
        let (enqueuer, committers) =
            Enqueuer::start(&store, config.clone(), backlog, &committed, &metrics);
        tasks.extend(committers);
        let webhook_http = WebhookHttp::new(config.webhook_timeout);
        // One dispatcher for every shard this process holds: the pool's workers register
        // their shards with it while they hold them.
        let shards = ShardSet::default();
        let dispatcher = tokio::spawn(
            Dispatcher {
                shards: shards.clone(),
                store: store.clone(),
                settings: settings.clone(),
                http: webhook_http.clone(),
                permits: Arc::new(Semaphore::new(PERMITS as usize)),
                config: config.clone(),
                ready: callbacks_ready.clone(),
                metrics: metrics.clone(),
                clock: clock.clone(),
            }
            .run(stop_dispatcher.clone()),
        );
        let (nodes, pool_task) = pool::ShardPool {
            shards,
            store,
            config,
            upstream: upstream.clone(),
            recorder: recorder.clone(),
            committed,
            callbacks_ready,
            metrics: metrics.clone(),
            clock,
        }
        .start(stop_pool.clone());
        Ok(Self {
            enqueuer,
            settings,
            nodes,
            metrics,
            upstream,
            recorder,
            retention,
            webhook_http,
            stop_pool,
            pool: pool_task,
            stop_dispatcher,
            dispatcher,
            stop_rest,
            tasks,
        })
    }

    /// Runs `task` beside the engine's own until shutdown: it is given a token cancelled when the
    /// engine stops its background work, and shutdown waits for it to return. Every long-lived
    /// task of the process (certificate reloads, the metrics listener, the webhook sweep) runs
    /// so, and stops with the rest.
    pub fn run_until_shutdown<F>(&mut self, task: impl FnOnce(CancellationToken) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.push(tokio::spawn(task(self.stop_rest.child_token())));
    }

    /// Stops taking work, lets shard workers finish what is in flight, records what they
    /// learnt, releases their leases so other replicas take over at once (each worker leaves
    /// the dispatcher's shards once none of its callbacks is in flight), stops the dispatcher,
    /// then the rest. Call after the HTTP server has stopped: committers finish the requests
    /// still queued.
    pub async fn shutdown(self) {
        drop(self.enqueuer);
        self.stop_pool.cancel();
        let _ = self.pool.await;
        self.stop_dispatcher.cancel();
        let _ = self.dispatcher.await;
        self.stop_rest.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
