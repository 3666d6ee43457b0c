//! The report: a table for the terminal and a JSON document for comparing runs.

use std::fmt::Write as _;

use serde::Serialize;

use crate::run::Outcome;
use crate::scenario::{ONPREM_32_SHARDS, ONPREM_ONE_SHARD};

#[derive(Debug, Serialize)]
pub struct Report {
    pub tool: &'static str,
    /// Unix seconds when the run ended.
    pub finished_at: u64,
    pub machine: Machine,
    pub onprem_per_s: OnPrem,
    pub scenarios: Vec<Outcome>,
}

#[derive(Debug, Serialize)]
pub struct OnPrem {
    pub one_shard: f64,
    pub thirty_two_shards: f64,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub memory_gib: f64,
    pub cpu_model: String,
    pub kernel: String,
}

impl Machine {
    pub fn this() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let memory_kb = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .unwrap_or(0.0);
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or_else(String::new, |m| m.trim().to_owned());
        Self {
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            memory_gib: (memory_kb / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            cpu_model,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        }
    }
}

impl Report {
    pub fn new(scenarios: Vec<Outcome>) -> Self {
        Self {
            tool: concat!("premise-bench ", env!("CARGO_PKG_VERSION")),
            finished_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            machine: Machine::this(),
            onprem_per_s: OnPrem {
                one_shard: ONPREM_ONE_SHARD,
                thirty_two_shards: ONPREM_32_SHARDS,
            },
            scenarios,
        }
    }

    /// The terminal table: one row per scenario.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<15} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>6} {:>5} {:>5} {:>4} {:>9} {:>6} {:>7}",
            "scenario",
            "accept/s",
            "e2e/s",
            "acc p50",
            "acc p99",
            "acc p999",
            "e2e p50",
            "e2e p99",
            "RSS MB",
            "errors",
            "lost",
            "order",
            "dup",
            "ceiling/s",
            "÷ceil",
            "×OnPrem"
        );
        for o in &self.scenarios {
            let _ = writeln!(
                out,
                "{:<15} {:>9.0} {:>9.0} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>7.1} {:>6} {:>5} {:>5} {:>4} {:>9} {:>6} {:>7.1}",
                o.name,
                o.accepted_per_s,
                o.e2e_per_s,
                o.accept_p50_ms,
                o.accept_p99_ms,
                o.accept_p999_ms,
                o.e2e_p50_ms,
                o.e2e_p99_ms,
                o.peak_rss_mb,
                o.total_errors(),
                o.lost,
                o.order_violations,
                o.duplicates,
                o.ceiling_insert_per_s.map_or("-".to_owned(), |c| format!("{c:.0}")),
                o.accept_vs_ceiling.map_or("-".to_owned(), |r| format!("{r:.2}")),
                o.e2e_vs_onprem,
            );
        }
        let _ = writeln!(
            out,
            "latencies in ms; e2e = accepted → acknowledged by the sandbox → final callback received \
             (`sent`, or `read` for lifecycle; for cloud-*: accepted → sent to the Cloud API fake → \
             its `delivered` webhook → the `delivered` callback, `read` in cloud-soak); ÷ceil = accept rate ÷ the same database's single-row \
             INSERT+COMMIT rate at the same concurrency; ×OnPrem = e2e ÷ the real client's figure \
             ({ONPREM_ONE_SHARD} msg/s on 1 shard, {ONPREM_32_SHARDS} on 32)"
        );
        for o in &self.scenarios {
            let _ = writeln!(
                out,
                "CPU per message in {}: server {:.0} µs, database {}, load generator {:.0} µs{}",
                o.name,
                o.server_cpu_us_per_msg,
                o.db_cpu_us_per_msg.map_or("in the server".to_owned(), |d| format!("{d:.0} µs")),
                o.bench_cpu_us_per_msg,
                o.balancer_cpu_us_per_msg.map_or(String::new(), |n| format!(", nginx {n:.0} µs"))
            );
        }
        for o in &self.scenarios {
            if let Some(c) = &o.cloud {
                let _ = writeln!(
                    out,
                    "Cloud API fake in {} (max_per_second {}, {} ms): {} sends, {:.1}/s over the load ({:+.1}% of the limit), end to end {:.1}/s ({:+.1}%), whole seconds {}..{}, peak in any second {}, {} invalid",
                    o.name,
                    c.max_per_second,
                    c.latency_ms,
                    c.sends,
                    c.per_s,
                    (c.per_s / f64::from(c.max_per_second) - 1.0) * 100.0,
                    c.e2e_per_s,
                    (c.e2e_per_s / f64::from(c.max_per_second) - 1.0) * 100.0,
                    c.min_1s,
                    c.max_1s,
                    c.peak_1s,
                    c.invalid
                );
            }
        }
        for o in self.scenarios.iter().filter(|o| !o.db_samples.is_empty()) {
            let keep = o.scenario.retention.map_or(0, |r| r.keep_secs);
            let kept = if keep == 0 { "kept forever".to_owned() } else { format!("kept {keep} s") };
            let _ = writeln!(out, "database in {} (finished messages {kept}):", o.name);
            for d in &o.db_samples {
                let _ = writeln!(
                    out,
                    "  {:>5.0} s {:>9.1} MB {:>9} messages {:>8} callbacks {:>7} inbound {:>7} Cloud webhooks; server RSS {:>6.1} MB",
                    d.t,
                    d.bytes as f64 / 1e6,
                    d.messages,
                    d.callbacks,
                    d.inbound,
                    d.cloud_webhooks,
                    d.rss_mb
                );
            }
        }
        for o in &self.scenarios {
            if let Some(c) = &o.customers {
                let _ = writeln!(
                    out,
                    "customers in {}: {} messages posted through the Cloud API fake ({} refused), {} called back to the integration",
                    o.name, c.posted, c.refused, c.called_back
                );
            }
        }
        for o in self.scenarios.iter().filter(|o| !o.replicas.is_empty()) {
            let _ = writeln!(out, "replicas in {} (behind nginx):", o.name);
            for r in &o.replicas {
                let _ = writeln!(
                    out,
                    "  {:<10} accepted {:>8} ({:>4.1}%)  acknowledged {:>8}  callbacks {:>8}  shards {:>2}  CPU {:>4.0} µs/msg  peak RSS {:>5.1} MB",
                    r.node,
                    r.accepted,
                    r.accepted as f64 * 100.0 / o.accepted.max(1) as f64,
                    r.acknowledged,
                    r.callbacks_delivered,
                    r.shards_held,
                    r.cpu_us_per_msg,
                    r.peak_rss_mb
                );
            }
        }
        for o in self.scenarios.iter().filter(|o| !o.errors.is_empty()) {
            let _ = writeln!(out, "errors in {}: {:?}", o.name, o.errors);
        }
        out
    }
}
