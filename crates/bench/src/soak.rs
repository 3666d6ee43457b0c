//! Soak runs: `[retention]` set for the run, and the database's size and row counts sampled
//! while it runs, to show whether they level off.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::scenario::Retention;
use crate::server::memory_mb;

/// The database at one moment of the run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DbSample {
    /// Seconds since the load started.
    pub t: f64,
    /// `pg_database_size`, or the SQLite files' size.
    pub bytes: u64,
    /// Rows of the queue and status table, the callback outbox, customers' messages.
    pub messages: i64,
    pub callbacks: i64,
    pub inbound: i64,
    /// Meta's webhooks kept (the bridge's intake journal).
    pub cloud_webhooks: i64,
    /// The server's resident memory (the sum of the replicas'), MB.
    pub rss_mb: f64,
}

/// Premise's settings for the retention of `retention`.
pub fn env(retention: &Retention) -> Vec<(&'static str, String)> {
    vec![
        ("PREMISE_RETENTION__MESSAGES_SECS", retention.keep_secs.to_string()),
        ("PREMISE_RETENTION__INBOUND_SECS", retention.keep_secs.to_string()),
        ("PREMISE_RETENTION__INTERVAL_MS", retention.interval.as_millis().to_string()),
    ]
}

#[derive(Debug)]
pub struct Sampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Vec<DbSample>>,
}

impl Sampler {
    /// Stops sampling after one last sample; every sample taken.
    pub async fn stop(self) -> Vec<DbSample> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

/// Samples the database at `url` and the memory of the servers `pids` every `every` (the first
/// at once), printing each line.
pub fn sample(
    url: String,
    pids: Vec<u32>,
    every: Duration,
    started: Instant,
    quiet: bool,
) -> Sampler {
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut samples = Vec::new();
        let mut tick = tokio::time::interval(every);
        loop {
            let last = tokio::select! {
                _ = tick.tick() => false,
                _ = &mut stopped => true,
            };
            match read(&url).await {
                Ok(Counts { bytes, messages, callbacks, inbound, cloud_webhooks }) => {
                    let sample = DbSample {
                        t: started.elapsed().as_secs_f64(),
                        bytes,
                        messages,
                        callbacks,
                        inbound,
                        cloud_webhooks,
                        rss_mb: pids.iter().map(|&pid| memory_mb(pid, "VmRSS:")).sum(),
                    };
                    if !quiet {
                        eprintln!(
                            "  database at {:>5.0} s: {:>8.1} MB, {} messages, {} callbacks, {} inbound, {} Cloud webhooks; server RSS {:.1} MB",
                            sample.t,
                            bytes as f64 / 1e6,
                            messages,
                            callbacks,
                            inbound,
                            cloud_webhooks,
                            sample.rss_mb
                        );
                    }
                    samples.push(sample);
                }
                Err(e) => eprintln!("  database sample failed: {e}"),
            }
            if last {
                return samples;
            }
        }
    });
    Sampler { stop, task }
}

const COUNTS: &str = "SELECT (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM callbacks),
                             (SELECT COUNT(*) FROM inbound_messages),
                             (SELECT COUNT(*) FROM cloud_webhooks)";

struct Counts {
    bytes: u64,
    messages: i64,
    callbacks: i64,
    inbound: i64,
    cloud_webhooks: i64,
}

async fn read(url: &str) -> anyhow::Result<Counts> {
    let (bytes, (messages, callbacks, inbound, cloud_webhooks)): (u64, (i64, i64, i64, i64)) =
        if let Some(path) = url.strip_prefix("sqlite://") {
            let pool = sqlx::SqlitePool::connect(url).await?;
            let counts = sqlx::query_as(COUNTS).fetch_one(&pool).await?;
            pool.close().await;
            let size = |p: String| std::fs::metadata(p).map_or(0, |m| m.len());
            (size(path.to_owned()) + size(format!("{path}-wal")), counts)
        } else {
            let pool = sqlx::PgPool::connect(url).await?;
            let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(&pool)
                .await?;
            let counts = sqlx::query_as(COUNTS).fetch_one(&pool).await?;
            pool.close().await;
            (bytes.unsigned_abs(), counts)
        };
    Ok(Counts { bytes, messages, callbacks, inbound, cloud_webhooks })
}
