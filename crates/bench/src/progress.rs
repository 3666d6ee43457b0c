//! Live progress: once a second, what was accepted and what finished its journey, printed and
//! kept as the throughput-over-time series of the report.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::load::Tally;
use crate::receiver::Receiver;
use crate::server::memory_mb;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    /// Seconds since the load started.
    pub t: f64,
    pub accepted_per_s: f64,
    pub e2e_per_s: f64,
    /// Accepted but not yet at the end of the journey.
    pub in_pipeline: u64,
    /// Of the server, or the sum of the replicas'.
    pub rss_mb: f64,
    /// Accept latency of the requests answered in this second: its 99th percentile and
    /// maximum, in milliseconds (a stall shows as one second's tail, a steady cost in all).
    pub accept_p99_ms: f64,
    pub accept_max_ms: f64,
}

#[derive(Debug)]
pub struct Watch {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Vec<Sample>>,
}

pub fn watch(
    name: &'static str,
    tally: Arc<Tally>,
    receiver: Receiver,
    pids: Vec<u32>,
    quiet: bool,
) -> Watch {
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let start = Instant::now();
        let mut series = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let (mut accepted_before, mut finished_before, mut at_before) = (0, 0, start);
        loop {
            let last = tokio::select! {
                _ = tick.tick() => false,
                _ = &mut stopped => true,
            };
            let now = Instant::now();
            let accepted = tally.accepted_count.load(Ordering::Relaxed);
            let finished = receiver.finished() as u64;
            let errors = tally.error_count.load(Ordering::Relaxed);
            let span = now.duration_since(at_before).as_secs_f64().max(1e-3);
            let (accept_p99_ms, accept_max_ms) = tally.take_recent_tail_ms();
            let sample = Sample {
                t: now.duration_since(start).as_secs_f64(),
                accepted_per_s: (accepted - accepted_before) as f64 / span,
                e2e_per_s: finished.saturating_sub(finished_before) as f64 / span,
                in_pipeline: accepted.saturating_sub(finished),
                rss_mb: pids.iter().map(|&pid| memory_mb(pid, "VmRSS:")).sum(),
                accept_p99_ms,
                accept_max_ms,
            };
            if !quiet {
                eprintln!(
                    "  [{name}] {:>5.1}s  accepted {:>7.0}/s  end-to-end {:>7.0}/s  in pipeline {:>7}  errors {:>5}  server RSS {:>5.1} MB  accept p99 {:>6.1} max {:>6.1} ms",
                    sample.t,
                    sample.accepted_per_s,
                    sample.e2e_per_s,
                    sample.in_pipeline,
                    errors,
                    sample.rss_mb,
                    sample.accept_p99_ms,
                    sample.accept_max_ms
                );
            }
            series.push(sample);
            (accepted_before, finished_before, at_before) = (accepted, finished, now);
            if last {
                return series;
            }
        }
    });
    Watch { stop, task }
}

impl Watch {
    pub async fn stop(self) -> Vec<Sample> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}
