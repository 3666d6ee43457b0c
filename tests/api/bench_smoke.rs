//! The benchmark tool's smoke scenario against the real binary, so the tool keeps working.
//! Nothing here asserts a speed: machines are shared and noisy; the figures come from
//! `cargo run --release -p premise-bench -- --scenario all`.

use premise_bench::{Bench, Scenario};
use premise_testkit::TempDir;
use serde_json::Value;

/// Runs the scenario `name` quietly against the test build's binary, with a console session
/// watching if `console`.
async fn run(name: &str, console: bool) -> premise_bench::Report {
    let scenarios = Scenario::named(name).unwrap_or_else(|| panic!("no scenario {name}"));
    let mut bench = Bench::new(env!("CARGO_BIN_EXE_premise").into(), None);
    bench.quiet = true;
    bench.console = console;
    premise_bench::run_all(&mut bench, &scenarios).await.expect("the run completes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smoke_scenario_runs_and_reports() {
    // With a console session watching, as `--console` runs it (its own sign-in must work).
    let report = run("smoke", true).await;
    let smoke = &report.scenarios[0];
    assert_eq!(smoke.accepted, 3_000, "every offered message accepted: {:?}", smoke.errors);
    assert_eq!(smoke.lost, 0);
    assert_eq!(smoke.order_violations, 0);
    assert_eq!(smoke.upstream_repeats, 0);
    assert!(smoke.e2e_per_s > 0.0 && smoke.peak_rss_mb > 0.0);
    assert!(smoke.ceiling_insert_per_s.is_some_and(|c| c > 0.0));
    assert!(report.table().contains("smoke"));

    let out = TempDir::new("bench-smoke");
    let (json, svg) = (out.path().join("r/results.json"), out.path().join("r/chart.svg"));
    premise_bench::write(&report, &json, &svg).expect("outputs written");
    let written: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let entry = &written["scenarios"][0];
    for field in [
        "name",
        "accepted_per_s",
        "e2e_per_s",
        "accept_p50_ms",
        "accept_p99_ms",
        "e2e_p99_ms",
        "peak_rss_mb",
        "lost",
        "order_violations",
        "duplicates",
        "ceiling_insert_per_s",
    ] {
        assert!(!entry[field].is_null(), "{field} missing from {entry}");
    }
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.contains("polyline"), "{chart}");
}

/// The Cloud scenario's smoke version: the fake, its webhooks, the figures it reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloud_smoke_scenario_runs_and_reports() {
    let report = run("cloud-smoke", false).await;
    let smoke = &report.scenarios[0];
    assert!(smoke.accepted > 500, "{} accepted: {:?}", smoke.accepted, smoke.errors);
    assert_eq!(smoke.lost, 0);
    assert_eq!(smoke.order_violations, 0);
    let cloud = smoke.cloud.as_ref().expect("Cloud figures");
    assert_eq!(cloud.invalid, 0, "requests the fake found invalid");
    assert_eq!(cloud.sends, smoke.accepted + smoke.upstream_repeats);
    // Offered 240/s against a limit of 200/s: the limit holds (loosely: a short run on a
    // shared machine).
    assert!(cloud.per_s <= 200.0 * 1.1, "{} sends/s", cloud.per_s);
    assert!(report.table().contains("Cloud API fake in cloud-smoke"));
}

/// The soak's smoke version: retention on, the database sampled while it runs, nothing owed
/// deleted (every message's `read` callback arrives).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soak_smoke_scenario_samples_the_database() {
    let report = run("soak-smoke", false).await;
    let soak = &report.scenarios[0];
    assert!(soak.accepted > 1_000, "{} accepted: {:?}", soak.accepted, soak.errors);
    assert_eq!((soak.lost, soak.order_violations, soak.duplicates), (0, 0, 0));
    assert!(soak.db_samples.len() >= 4, "{:?}", soak.db_samples);
    assert!(soak.db_samples.iter().all(|d| d.bytes > 0));
    let last = soak.db_samples.last().unwrap();
    assert!(
        (last.messages as u64) < soak.accepted,
        "retention deleted finished messages: {} rows of {} accepted",
        last.messages,
        soak.accepted
    );
    assert!(report.table().contains("database in soak-smoke"));
}

/// Three replicas on one Postgres behind nginx configured by `deploy/nginx.conf`: each one's
/// share reported from its own `/metrics`, together what the load generator saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replicas_smoke_scenario_reports_each_replica() {
    let report = run("replicas-smoke", false).await;
    let run = &report.scenarios[0];
    assert_eq!(run.accepted, 3_000, "every offered message accepted: {:?}", run.errors);
    assert_eq!((run.lost, run.order_violations, run.upstream_repeats), (0, 0, 0));
    assert_eq!(run.replicas.len(), 3);
    let sum = |f: fn(&premise_bench::replicas::ReplicaFigures) -> u64| -> u64 {
        run.replicas.iter().map(f).sum()
    };
    assert_eq!(sum(|r| r.accepted), 3_000, "{:?}", run.replicas);
    assert_eq!(sum(|r| r.acknowledged), 3_000, "{:?}", run.replicas);
    assert_eq!(sum(|r| r.shards_held), 8, "{:?}", run.replicas);
    // nginx balanced the requests: every replica took some.
    assert!(run.replicas.iter().all(|r| r.accepted > 0 && r.cpu_us_per_msg > 0.0));
    assert!(run.balancer_cpu_us_per_msg.is_some());
    assert!(report.table().contains("replicas in replicas-smoke"));
}

/// The bridge soak's smoke version: `read` from the fake, customers writing back, retention
/// on, the database and memory sampled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloud_soak_smoke_scenario_writes_back_and_samples() {
    let report = run("cloud-soak-smoke", false).await;
    let soak = &report.scenarios[0];
    assert!(soak.accepted > 1_000, "{} accepted: {:?}", soak.accepted, soak.errors);
    assert_eq!((soak.lost, soak.order_violations, soak.duplicates), (0, 0, 0));
    assert_eq!(soak.cloud.as_ref().map(|c| c.invalid), Some(0));
    let customers = soak.customers.expect("customers wrote");
    assert!(customers.posted > 100 && customers.refused == 0, "{customers:?}");
    assert_eq!(customers.called_back, customers.posted, "every customer message called back");
    assert!(soak.db_samples.len() >= 4, "{:?}", soak.db_samples);
    assert!(soak.db_samples.iter().all(|d| d.bytes > 0 && d.rss_mb > 0.0));
    let last = soak.db_samples.last().unwrap();
    assert!((last.messages as u64) < soak.accepted, "retention ran: {last:?}");
    assert!((last.inbound as u64) < customers.posted, "retention ran: {last:?}");
}
