//! The engine's knobs, filled from the `[queue]`, `[sender]` and `[callbacks]` settings.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This replica's name in leases, health and logs.
    pub node: String,
    /// Requests waiting for a commit; beyond it `POST /v1/messages` answers 1016.
    pub accept_queue: usize,
    /// How long a request waits for its commit to be confirmed before it is answered as
    /// unavailable (the database then counts as stalled).
    pub commit_timeout: Duration,
    /// Most messages in one group commit.
    pub max_batch: usize,
    /// Group commits in flight at once.
    pub committers: usize,
    /// Queued messages in the store beyond which new ones are refused (1016).
    pub max_queued: u64,
    /// Undelivered callbacks beyond which new messages are refused (1016), as On-Premises.
    pub max_callback_backlog: u64,
    pub backlog_refresh: Duration,
    /// How often the per-shard queue figures for metrics are read from the store.
    pub queue_stats_refresh: Duration,
    /// Sends in flight per shard (each to a different recipient).
    pub shard_window: usize,
    /// Queued messages a shard worker holds in memory.
    pub shard_buffer: usize,
    /// How often workers look for work committed by other replicas.
    pub poll_interval: Duration,
    /// Woken by other replicas' work, a worker reads its queue no sooner than this after its
    /// previous read, so that work arriving close together is read in one query.
    pub read_gap: Duration,
    /// A shard's webhook dispatcher reads its callbacks no sooner than this after its previous
    /// read: callbacks of one shard are gathered into fewer reads and fuller webhook POSTs.
    pub callback_read_gap: Duration,
    pub lease_ttl: Duration,
    pub lease_renew: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub send_timeout: Duration,
    pub webhook_timeout: Duration,
    /// Statuses in one webhook POST at most.
    pub webhook_batch: usize,
    /// The business account and number Cloud-form webhooks are about (`webhooks.format`).
    pub cloud_identity: premise_wire::cloud_webhooks::CloudIdentity,
    /// `[cloud] app_secret`: signs Cloud-form webhooks when `webhooks.secret` is not set, as
    /// Meta signs its own with the app's secret. Empty: unsigned.
    pub cloud_app_secret: premise_base::Secret,
    /// What is deleted when (`[retention]`).
    pub retention: crate::RetentionConfig,
}

impl EngineConfig {
    /// Settings for tests and tools: small, quick, same behaviour.
    pub fn for_node(node: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            accept_queue: 10_000,
            commit_timeout: Duration::from_secs(5),
            max_batch: 512,
            committers: 1,
            max_queued: 1_000_000,
            max_callback_backlog: 100_000,
            backlog_refresh: Duration::from_millis(500),
            queue_stats_refresh: Duration::from_secs(5),
            shard_window: 256,
            shard_buffer: 5_000,
            poll_interval: Duration::from_millis(100),
            read_gap: Duration::from_millis(20),
            callback_read_gap: Duration::from_millis(50),
            lease_ttl: Duration::from_secs(10),
            lease_renew: Duration::from_secs(2),
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
            send_timeout: Duration::from_secs(30),
            webhook_timeout: Duration::from_secs(10),
            webhook_batch: 50,
            cloud_identity: premise_wire::cloud_webhooks::CloudIdentity::default(),
            cloud_app_secret: premise_base::Secret::default(),
            retention: crate::RetentionConfig::default(),
        }
    }
}
