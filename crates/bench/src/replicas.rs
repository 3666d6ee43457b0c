//! Each replica's share of a run behind nginx: what its own `/metrics` counted, the shards it
//! held, its CPU and memory.

use serde::Serialize;

use crate::load::Client;
use crate::server::Fleet;

#[derive(Debug, Clone, Serialize)]
pub struct ReplicaFigures {
    pub node: String,
    /// Messages this replica accepted (`premise_messages_accepted_total`).
    pub accepted: u64,
    /// Sends the upstream acknowledged from this replica's shards.
    pub acknowledged: u64,
    /// Status callbacks this replica delivered.
    pub callbacks_delivered: u64,
    /// Shards it held at the end of the load.
    pub shards_held: u64,
    /// Its CPU time per message of the whole run (all replicas' messages), µs.
    pub cpu_us_per_msg: f64,
    pub peak_rss_mb: f64,
}

/// Each replica's counters, read from its own `/metrics` (not through nginx); figures the
/// run fills in (CPU) start at 0.
pub async fn scrape(client: &Client, fleet: &Fleet) -> anyhow::Result<Vec<ReplicaFigures>> {
    let mut figures = Vec::new();
    for (n, server) in fleet.replicas.iter().enumerate() {
        let text = client.get_text(&server.base, "/metrics").await?;
        figures.push(ReplicaFigures {
            node: format!("replica-{}", n + 1),
            accepted: sum(&text, "premise_messages_accepted_total"),
            acknowledged: sum(&text, "premise_messages_acknowledged_total"),
            callbacks_delivered: sum(&text, "premise_callbacks_delivered_total"),
            shards_held: sum(&text, "premise_shard_leases_held"),
            cpu_us_per_msg: 0.0,
            peak_rss_mb: server.peak_rss_mb(),
        });
    }
    Ok(figures)
}

/// The sum of every series of the metric `name` in a Prometheus exposition.
fn sum(exposition: &str, name: &str) -> u64 {
    exposition
        .lines()
        .filter(|l| {
            l.strip_prefix(name).is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn series_of_one_metric_are_summed() {
        let text = "# TYPE premise_messages_accepted_total counter\n\
                    premise_messages_accepted_total{type=\"text\"} 10\n\
                    premise_messages_accepted_total{type=\"image\"} 5\n\
                    premise_messages_accepted_total_other 99\n\
                    premise_shard_leases_held 11\n";
        assert_eq!(super::sum(text, "premise_messages_accepted_total"), 15);
        assert_eq!(super::sum(text, "premise_shard_leases_held"), 11);
        assert_eq!(super::sum(text, "premise_missing"), 0);
    }
}
