//! `cargo run --release -p premise-bench -- --scenario all`: see the README's Performance
//! section.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use premise_bench::{Bench, Scenario, scenario};

/// Load generator and benchmark report for Premise.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// smoke, cloud-smoke, soak-smoke, replicas-smoke, cloud-soak-smoke, pg-1, pg-32,
    /// replicas-3 (three replicas behind nginx), pg-1-latency20, sqlite-1, lifecycle,
    /// sqlite-lifecycle, fixed-2000, cloud-1000, cloud-1000-latency20, cloud-80, soak (10 minutes
    /// with a 60 s retention), soak-keep (the same without retention), cloud-soak (the bridge for
    /// 10 minutes, customers writing back, retention 60 s), or all (every one but the smoke and
    /// soak ones).
    /// Repeat or separate with commas for several.
    #[arg(long, default_value = "all", value_delimiter = ',')]
    scenario: Vec<String>,
    /// Seconds of load per scenario (default: 60; smoke: 20 or 3,000 messages).
    #[arg(long)]
    duration: Option<u64>,
    /// Concurrent clients of the closed-loop scenarios (default 64; smoke 16). The database
    /// ceiling is measured at the same concurrency.
    #[arg(long)]
    clients: Option<usize>,
    /// Where to write the JSON results.
    #[arg(long, default_value = "target/bench/results.json")]
    json: PathBuf,
    /// Where to write the SVG chart.
    #[arg(long, default_value = "target/bench/chart.svg")]
    svg: PathBuf,
    /// The premise binary to measure; by default the workspace's release build, built first.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Keep a console session watching through the load (the Messages page and Health reloaded
    /// every 2 s, the live statuses of the messages shown followed), to show what it costs.
    #[arg(long)]
    console: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut scenarios: Vec<Scenario> = Vec::new();
    for name in &args.scenario {
        match Scenario::named(name) {
            Some(found) => scenarios.extend(found),
            None => {
                bail!("no scenario '{name}': choose from {} or all", scenario::NAMES.join(", "))
            }
        }
    }
    if let Some(clients) = args.clients {
        for scenario in &mut scenarios {
            if let scenario::Load::Closed { clients: c } = &mut scenario.load {
                *c = clients.max(1);
            }
        }
    }
    let binary = match args.server_bin {
        Some(path) => path,
        None => build_server()?,
    };
    let mut bench = Bench::new(binary, args.duration.map(Duration::from_secs));
    bench.console = args.console;
    let report = premise_bench::run_all(&mut bench, &scenarios).await?;
    println!("\n{}", report.table());
    premise_bench::write(&report, &args.json, &args.svg)?;
    println!("results: {}  chart: {}", args.json.display(), args.svg.display());
    let broken: Vec<_> = report
        .scenarios
        .iter()
        .filter(|o| {
            o.lost > 0 || o.order_violations > 0 || o.cloud.as_ref().is_some_and(|c| c.invalid > 0)
        })
        .map(|o| o.name.as_str())
        .collect();
    if !broken.is_empty() {
        bail!("messages lost, out of order or invalid at Cloud in: {}", broken.join(", "));
    }
    Ok(())
}

/// Builds the release `premise` binary of this workspace and returns its path.
fn build_server() -> anyhow::Result<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("building the release server (cargo build --release --bin premise)...");
    let status = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--release", "-q", "-p", "premise", "--bin", "premise"])
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("building the server failed");
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    Ok(target.join("release/premise"))
}
