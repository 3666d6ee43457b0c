//! The pipeline's metrics: counters, gauges and histograms on atomics, so the hot path (thousands
//! of messages a second) pays one relaxed `fetch_add` per event and never takes a lock. Queue
//! depth per shard needs the store; a task refreshes it every `queue_refresh` instead of per
//! scrape. The binary renders everything ([`Metrics::families`]) as Prometheus text or as the
//! On-Premises JSON.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use premise_base::Clock;
use premise_store::{ShardBacklog, Store};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::NodeView;

/// Latency buckets in seconds: 1 ms to 30 s.
pub const LATENCY_BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A latency histogram with the [`LATENCY_BUCKETS`]. Each observation adds to one bucket; the
/// cumulative counts Prometheus wants are summed when rendering.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    /// Observations above the last bucket.
    over: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        match LATENCY_BUCKETS.iter().position(|le| secs <= *le) {
            Some(i) => self.buckets[i].fetch_add(1, Ordering::Relaxed),
            None => self.over.fetch_add(1, Ordering::Relaxed),
        };
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Cumulative counts per bucket (the last is `+Inf`, the total), and the sum in seconds.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, f64) {
        let mut total = 0;
        let mut out = Vec::with_capacity(LATENCY_BUCKETS.len() + 1);
        for (le, count) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            total += count.load(Ordering::Relaxed);
            out.push((*le, total));
        }
        total += self.over.load(Ordering::Relaxed);
        out.push((f64::INFINITY, total));
        (out, self.sum_us.load(Ordering::Relaxed) as f64 / 1e6)
    }
}

/// A metric's kind, as both exposition formats name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric and its samples, ready to render.
#[derive(Debug, Clone)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

#[derive(Debug, Clone)]
pub enum Value {
    Number(f64),
    /// Cumulative bucket counts (the last is `+Inf`) and the sum.
    Histogram(Vec<(f64, u64)>, f64),
}

impl Family {
    pub fn new(name: &'static str, help: &'static str, kind: Kind) -> Self {
        Self { name, help, kind, samples: Vec::new() }
    }

    pub fn with(mut self, labels: Vec<(&'static str, String)>, value: f64) -> Self {
        self.samples.push(Sample { labels, value: Value::Number(value) });
        self
    }

    pub fn with_histogram(
        mut self,
        labels: Vec<(&'static str, String)>,
        histogram: &Histogram,
    ) -> Self {
        let (buckets, sum) = histogram.snapshot();
        self.samples.push(Sample { labels, value: Value::Histogram(buckets, sum) });
        self
    }
}

/// What `/v1/stats/app` and `/v1/stats/db` show of one replica. Each replica publishes its
/// own with its heartbeat, so any replica can answer with every one's.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeStats {
    /// Callbacks waiting in the shards this replica holds.
    pub callback_queue_size: u64,
    pub callback_posts_ok: u64,
    pub callback_posts_failed: u64,
    /// Webhook POSTs timed, and their total time in ms.
    pub callback_posts_timed: u64,
    pub callback_ms_sum: f64,
    /// Messages queued in the store, acknowledged and failed by this replica.
    pub message_queue_size: u64,
    pub messages_sent: u64,
    pub messages_failed: u64,
    /// The last heartbeat's round trip to the database, microseconds.
    pub db_heartbeat_us: u64,
    /// The shards it held at its last heartbeat (each replica's, for the console).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<u32>,
    /// The last ten minutes, a sample every ten seconds, oldest first (the console draws them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<StatsSample>,
}

/// A replica's counters at one moment, for the console's charts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatsSample {
    /// Unix seconds.
    pub at: i64,
    /// Messages acknowledged by the upstream so far (a counter).
    pub sent: u64,
    /// Webhook POSTs taken by the receiver so far (a counter).
    pub posted: u64,
    /// Messages queued and callbacks waiting, in the shards this replica holds.
    pub queued: u64,
    pub callbacks: u64,
}

/// Samples kept, and how far apart.
const HISTORY: usize = 60;
const SAMPLE_EVERY_SECS: i64 = 10;

/// The pipeline's counters. Shared by every worker of the process.
#[derive(Debug, Default)]
pub struct Metrics {
    pub accepted: AtomicU64,
    pub acknowledged: AtomicU64,
    pub failed: AtomicU64,
    /// Sends that failed transiently and will be tried again.
    pub retries: AtomicU64,
    pub sends_in_flight: AtomicI64,
    pub upstream_latency: Histogram,
    /// Webhook POSTs answered 2xx, and statuses they carried.
    pub callback_posts_ok: AtomicU64,
    pub callback_posts_failed: AtomicU64,
    pub callbacks_delivered: AtomicU64,
    pub callback_latency: Histogram,
    /// Upstream webhooks (the Cloud API's) taken, and refused for a bad signature or body.
    pub upstream_webhooks_ok: AtomicU64,
    pub upstream_webhooks_unsigned: AtomicU64,
    pub upstream_webhooks_invalid: AtomicU64,
    /// Parts of those webhooks (a status, a message, a change) kept without being mapped.
    pub upstream_webhook_parts_unmapped: AtomicU64,
    /// Statuses those webhooks carried: of Premise's messages, and of ids Premise does not know.
    pub upstream_statuses: AtomicU64,
    pub upstream_statuses_unknown: AtomicU64,
    /// Customers' messages those webhooks carried.
    pub inbound_received: AtomicU64,
    /// The last heartbeat's round trip to the database, microseconds.
    pub db_heartbeat_us: AtomicU64,
    /// Rows the retention passes of this replica deleted.
    pub purged_messages: AtomicU64,
    pub purged_inbound: AtomicU64,
    pub purged_media: AtomicU64,
    pub purged_expired: AtomicU64,
    shards: RwLock<Vec<ShardBacklog>>,
    shard_count: AtomicU32,
    /// When `shards` was last refreshed (Unix ms).
    refreshed_at_ms: AtomicI64,
    clock: Clock,
    /// The samples published with each heartbeat ([`NodeStats::history`]).
    history: std::sync::Mutex<std::collections::VecDeque<StatsSample>>,
}

impl Metrics {
    pub fn new(clock: Clock) -> Arc<Self> {
        Arc::new(Self { clock, ..Self::default() })
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// This replica's figures for `/v1/stats/*`.
    pub fn node_stats(&self) -> NodeStats {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (buckets, sum) = self.callback_latency.snapshot();
        let mut stats = NodeStats {
            callback_queue_size: self.callback_backlog_total(),
            callback_posts_ok: n(&self.callback_posts_ok),
            callback_posts_failed: n(&self.callback_posts_failed),
            callback_posts_timed: buckets.last().map_or(0, |(_, c)| *c),
            callback_ms_sum: (sum * 1000.0).round(),
            message_queue_size: self.queue_depth_total(),
            messages_sent: n(&self.acknowledged),
            messages_failed: n(&self.failed),
            db_heartbeat_us: n(&self.db_heartbeat_us),
            shards: Vec::new(),
            history: Vec::new(),
        };
        let now = StatsSample {
            at: self.clock.now_secs(),
            sent: stats.messages_sent,
            posted: stats.callback_posts_ok,
            queued: stats.message_queue_size,
            callbacks: stats.callback_queue_size,
        };
        if let Ok(mut history) = self.history.lock() {
            if history.back().is_none_or(|last| now.at - last.at >= SAMPLE_EVERY_SECS) {
                history.push_back(now);
                while history.len() > HISTORY {
                    history.pop_front();
                }
            }
            stats.history = history.iter().copied().collect();
        }
        stats
    }

    /// Refreshes the per-shard backlog from the store every `every` until cancelled.
    pub(crate) fn spawn_refresh(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        every: Duration,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        let this = self.clone();
        crate::every::every(self.clock.clone(), every, cancel, move || {
            let (this, store) = (this.clone(), store.clone());
            async move {
                match tokio::try_join!(store.shard_backlogs(), store.account()) {
                    Ok((shards, account)) => {
                        *this.shards.write().expect("metrics lock") = shards;
                        this.shard_count.store(account.shards, Ordering::Relaxed);
                        this.refreshed_at_ms.store(this.clock.now_ms(), Ordering::Relaxed);
                    }
                    Err(e) => tracing::warn!(error = %e, "metrics: cannot read the shard backlog"),
                }
            }
        })
    }

    /// Queued messages in all shards, as last read from the store.
    pub fn queue_depth_total(&self) -> u64 {
        self.shards.read().expect("metrics lock").iter().map(|s| s.queued).sum()
    }

    /// Undelivered callbacks in all shards, as last read from the store.
    pub fn callback_backlog_total(&self) -> u64 {
        self.shards.read().expect("metrics lock").iter().map(|s| s.callbacks).sum()
    }

    /// Every pipeline metric, with this replica's view of the shards.
    pub fn families(&self, nodes: &NodeView) -> Vec<Family> {
        let shard_count = self.shard_count.load(Ordering::Relaxed);
        use Kind::{Counter, Gauge, Histogram};
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let shards = self.shards.read().expect("metrics lock").clone();
        let now = self.clock.now_ms();
        let by_shard = |f: &dyn Fn(&ShardBacklog) -> f64| {
            (0..shard_count)
                .map(|s| {
                    let b = shards.iter().find(|b| b.shard == s).copied().unwrap_or_default();
                    (vec![("shard", s.to_string())], f(&b))
                })
                .collect::<Vec<_>>()
        };
        let mut depth = Family::new(
            "premise_queue_depth",
            "Messages queued (accepted, not yet acknowledged) per shard, all replicas",
            Gauge,
        );
        for (labels, v) in by_shard(&|b| b.queued as f64) {
            depth = depth.with(labels, v);
        }
        let mut oldest = Family::new(
            "premise_queue_oldest_age_seconds",
            "Age of the oldest queued message per shard (0 when empty)",
            Gauge,
        );
        for (labels, v) in by_shard(&|b| {
            b.oldest_queued_at.map_or(0.0, |at| (now - at.ms()).max(0) as f64 / 1000.0)
        }) {
            oldest = oldest.with(labels, v);
        }
        let mut backlog = Family::new(
            "premise_callback_backlog",
            "Status callbacks waiting for the webhook receiver per shard, all replicas",
            Gauge,
        );
        for (labels, v) in by_shard(&|b| b.callbacks as f64) {
            backlog = backlog.with(labels, v);
        }
        let refreshed = self.refreshed_at_ms.load(Ordering::Relaxed);
        vec![
            Family::new(
                "premise_messages_accepted_total",
                "Messages committed to the queue by this replica",
                Counter,
            )
            .with(vec![], n(&self.accepted)),
            Family::new(
                "premise_messages_acknowledged_total",
                "Messages the upstream acknowledged, sent by this replica",
                Counter,
            )
            .with(vec![], n(&self.acknowledged)),
            Family::new(
                "premise_messages_failed_total",
                "Messages failed for good, sent by this replica",
                Counter,
            )
            .with(vec![], n(&self.failed)),
            Family::new(
                "premise_send_retries_total",
                "Sends that failed transiently and are retried",
                Counter,
            )
            .with(vec![], n(&self.retries)),
            Family::new("premise_sends_in_flight", "Sends awaiting the upstream's answer", Gauge)
                .with(vec![], self.sends_in_flight.load(Ordering::Relaxed) as f64),
            Family::new(
                "premise_upstream_send_duration_seconds",
                "Time from a send to the upstream's answer",
                Histogram,
            )
            .with_histogram(vec![], &self.upstream_latency),
            depth,
            oldest,
            backlog,
            Family::new(
                "premise_queue_stats_age_seconds",
                "Time since the per-shard queue figures were read from the store",
                Gauge,
            )
            .with(vec![], if refreshed == 0 { 0.0 } else { (now - refreshed) as f64 / 1000.0 }),
            Family::new("premise_callback_deliveries_total", "Webhook POSTs by result", Counter)
                .with(vec![("result", "success".into())], n(&self.callback_posts_ok))
                .with(vec![("result", "failure".into())], n(&self.callback_posts_failed)),
            Family::new(
                "premise_callbacks_delivered_total",
                "Status callbacks delivered (a POST may carry several)",
                Counter,
            )
            .with(vec![], n(&self.callbacks_delivered)),
            Family::new(
                "premise_callback_delivery_duration_seconds",
                "Time from a webhook POST to its answer",
                Histogram,
            )
            .with_histogram(vec![], &self.callback_latency),
            Family::new(
                "premise_upstream_webhooks_total",
                "Webhooks from the upstream (the Cloud API) by result",
                Counter,
            )
            .with(vec![("result", "accepted".into())], n(&self.upstream_webhooks_ok))
            .with(vec![("result", "bad_signature".into())], n(&self.upstream_webhooks_unsigned))
            .with(vec![("result", "invalid".into())], n(&self.upstream_webhooks_invalid)),
            Family::new(
                "premise_upstream_webhook_parts_unmapped_total",
                "Parts of the upstream's webhooks kept without being mapped (GET /v1/cloud/webhooks/unmapped)",
                Counter,
            )
            .with(vec![], n(&self.upstream_webhook_parts_unmapped)),
            Family::new(
                "premise_upstream_statuses_total",
                "Statuses the upstream's webhooks carried, by whether the message is Premise's",
                Counter,
            )
            .with(vec![("message", "known".into())], n(&self.upstream_statuses))
            .with(vec![("message", "unknown".into())], n(&self.upstream_statuses_unknown)),
            Family::new(
                "premise_inbound_messages_total",
                "Customers' messages received from the upstream by this replica",
                Counter,
            )
            .with(vec![], n(&self.inbound_received)),
            Family::new(
                "premise_retention_deleted_total",
                "Rows this replica's retention passes deleted, by what they were",
                Counter,
            )
            .with(vec![("kind", "message".into())], n(&self.purged_messages))
            .with(vec![("kind", "inbound".into())], n(&self.purged_inbound))
            .with(vec![("kind", "media".into())], n(&self.purged_media))
            .with(vec![("kind", "expired".into())], n(&self.purged_expired)),
            Family::new("premise_shard_leases_held", "Shards this replica holds a lease on", Gauge)
                .with(vec![], nodes.shards().len() as f64),
            Family::new("premise_shards", "The account's shard count", Gauge)
                .with(vec![], f64::from(shard_count)),
            Family::new("premise_replicas", "Live replicas as this one last saw them", Gauge)
                .with(vec![], nodes.nodes().len() as f64),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a heartbeat publishes carries a sample every ten seconds, the last sixty.
    #[test]
    fn the_published_history_is_a_sample_every_ten_seconds() {
        let clock = Clock::manual(1_000_000);
        let metrics = Metrics::new(clock.clone());
        assert_eq!(metrics.node_stats().history.len(), 1);
        clock.advance(Duration::from_secs(5));
        assert_eq!(metrics.node_stats().history.len(), 1, "not yet ten seconds");
        Metrics::add(&metrics.acknowledged, 7);
        clock.advance(Duration::from_secs(5));
        let stats = metrics.node_stats();
        assert_eq!(stats.history.len(), 2);
        assert_eq!((stats.history[1].at - stats.history[0].at, stats.history[1].sent), (10, 7));
        for _ in 0..100 {
            clock.advance(Duration::from_secs(10));
            metrics.node_stats();
        }
        assert_eq!(metrics.node_stats().history.len(), 60, "ten minutes");
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_secs(60));
        let (buckets, sum) = h.snapshot();
        assert_eq!(buckets[0], (0.001, 1));
        assert_eq!(buckets.iter().find(|(le, _)| *le == 0.05).unwrap().1, 2);
        assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, 3));
        assert!((sum - 60.0305).abs() < 1e-6);
    }
}
