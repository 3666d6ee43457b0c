//! `premise-bench`: proves Premise's throughput, latency and memory. It starts what it needs (a
//! Premise server on a throwaway database, a webhook receiver), offers load like an
//! integration, and reports accepted and end-to-end rates, latency percentiles, memory, errors,
//! lost messages and order violations, beside the On-Premises client's figures and the
//! database's own single-row commit ceiling measured in the same run.
#![allow(clippy::print_stderr)]

mod balancer;
mod ceiling;
pub mod chart;
mod console;
mod cpu;
pub mod customers;
mod load;
mod progress;
mod receiver;
pub mod replicas;
pub mod report;
mod run;
pub mod scenario;
mod server;
pub mod soak;

pub use report::Report;
pub use run::{Bench, Outcome};
pub use scenario::Scenario;

/// Runs `scenarios` one after the other; a scenario that cannot run stops the rest.
pub async fn run_all(bench: &mut Bench, scenarios: &[Scenario]) -> anyhow::Result<Report> {
    let mut outcomes = Vec::new();
    for scenario in scenarios {
        outcomes.push(bench.run(scenario).await?);
    }
    Ok(Report::new(outcomes))
}

/// Writes the JSON report and the SVG chart, creating their folders.
pub fn write(report: &Report, json: &std::path::Path, svg: &std::path::Path) -> anyhow::Result<()> {
    for path in [json, svg] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
    }
    std::fs::write(json, serde_json::to_string_pretty(report)?)?;
    std::fs::write(svg, chart::svg(&report.scenarios))?;
    Ok(())
}
