//! One scenario from start to finish: a database, its ceiling, a server, the load, the drain,
//! and what it all adds up to.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use premise_testkit::{Cluster, TempDir};
use serde::Serialize;

use premise_testkit::cloud::{AutoStatuses, FakeCloud};

use crate::customers::{self, CustomerFigures};
use crate::load::{self, Accepted, Client};
use crate::receiver::Receiver;
use crate::replicas::{self, ReplicaFigures};
use crate::scenario::{Database, Scenario, Upstream};
use crate::server::Fleet;
use crate::{ceiling, cpu, progress};

/// What one scenario measured. The JSON report holds one per scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    pub about: String,
    pub scenario: Scenario,
    pub accepted: u64,
    pub accepted_per_s: f64,
    pub e2e_per_s: f64,
    pub accept_p50_ms: f64,
    pub accept_p99_ms: f64,
    pub accept_p999_ms: f64,
    pub e2e_p50_ms: f64,
    pub e2e_p99_ms: f64,
    pub peak_rss_mb: f64,
    pub errors: BTreeMap<String, u64>,
    /// Accepted messages that never reached the end of their journey (must be 0).
    pub lost: u64,
    /// Pairs of one recipient's messages that reached the sandbox in the other order than
    /// they were accepted (must be 0).
    pub order_violations: u64,
    /// Status callbacks received more than once.
    pub duplicates: u64,
    /// Sends the sandbox acknowledged more than once (a retry after a lost answer).
    pub upstream_repeats: u64,
    pub ceiling_insert_per_s: Option<f64>,
    pub accept_vs_ceiling: Option<f64>,
    pub e2e_vs_onprem: f64,
    /// Seconds from the first request to the last final callback.
    pub elapsed_s: f64,
    /// CPU time per accepted message, in microseconds, over the load and the drain: of the
    /// server, of the database (Postgres processes of the throwaway cluster; `None` for SQLite,
    /// which runs inside the server) and of this load generator.
    pub server_cpu_us_per_msg: f64,
    pub db_cpu_us_per_msg: Option<f64>,
    pub bench_cpu_us_per_msg: f64,
    /// Of nginx (master and workers), in front of several replicas.
    pub balancer_cpu_us_per_msg: Option<f64>,
    pub series: Vec<progress::Sample>,
    /// With the Cloud API fake as upstream: what it saw.
    pub cloud: Option<CloudFigures>,
    /// With a soak's sampling: the database's size and row counts over time.
    pub db_samples: Vec<crate::soak::DbSample>,
    /// With several replicas: each one's share.
    pub replicas: Vec<ReplicaFigures>,
    /// With customers writing back through the Cloud API fake.
    pub customers: Option<CustomerFigures>,
}

/// The pace of sends at the Cloud API fake, and what it found wrong.
#[derive(Debug, Clone, Serialize)]
pub struct CloudFigures {
    pub max_per_second: u32,
    pub latency_ms: u64,
    /// Sends the fake accepted.
    pub sends: u64,
    /// Sends per second over the load's duration, from the first send.
    pub per_s: f64,
    /// `delivered` callbacks per second at the integration over the load's duration, from the
    /// first: the whole round trip's pace.
    pub e2e_per_s: f64,
    /// The fewest and most sends in one whole second of that window.
    pub min_1s: u64,
    pub max_1s: u64,
    /// The most sends in any one-second window (sliding, 10 ms steps), over the whole run.
    pub peak_1s: u64,
    /// Requests the fake found invalid against Meta's description (must be 0).
    pub invalid: u64,
}

/// What scenarios share: the server binary, a durable Postgres server, where to keep files.
#[derive(Debug)]
pub struct Bench {
    pub binary: PathBuf,
    pub postgres: Option<Cluster>,
    pub work: TempDir,
    /// Seconds, overriding each scenario's own duration.
    pub duration: Option<Duration>,
    pub quiet: bool,
    /// With a console session watching through the load ([`crate::console`]).
    pub console: bool,
}

impl Bench {
    pub fn new(binary: PathBuf, duration: Option<Duration>) -> Self {
        Self {
            binary,
            postgres: None,
            work: TempDir::new("premise-bench"),
            duration,
            quiet: false,
            console: false,
        }
    }

    fn cluster(&mut self) -> &Cluster {
        self.postgres.get_or_insert_with(|| match std::env::var("BENCH_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Cluster::existing(&url),
            _ => Cluster::start_durable(),
        })
    }

    pub async fn run(&mut self, scenario: &Scenario) -> anyhow::Result<Outcome> {
        let mut scenario = scenario.clone();
        if let Some(duration) = self.duration {
            scenario.duration = duration;
        }
        let ceiling_for =
            scenario.duration.min(Duration::from_secs(10)).max(Duration::from_secs(2));
        let clients = scenario.clients();
        let dir = self.work.path().join(scenario.name);
        std::fs::create_dir_all(&dir)?;
        let (database_url, ceiling) = match scenario.database {
            Database::Postgres => {
                let cluster = self.cluster();
                let scratch = cluster.fresh_database().await;
                let server_db = cluster.fresh_database().await;
                let rate = ceiling::postgres(&scratch, clients, ceiling_for).await?;
                (server_db, rate)
            }
            Database::Sqlite => {
                let rate = ceiling::sqlite(&dir.join("ceiling.db"), clients, ceiling_for).await?;
                (format!("sqlite://{}", dir.join("premise.db").display()), rate)
            }
        };
        self.say(&format!(
            "[{}] {}; ceiling {:.0} single-row commits/s at {clients} clients",
            scenario.name, scenario.about, ceiling
        ));

        let journal = dir.join("sandbox-journal.jsonl");
        let fake = match scenario.upstream {
            Upstream::Sandbox => None,
            Upstream::Cloud { latency_ms, .. } => {
                let fake = FakeCloud::start().await;
                fake.set_latency(Duration::from_millis(latency_ms));
                Some(fake)
            }
        };
        let mut env = match (scenario.upstream, &fake) {
            (Upstream::Cloud { max_per_second, .. }, Some(fake)) => cloud_env(fake, max_per_second),
            _ => vec![
                ("PREMISE_SANDBOX__ACK_LATENCY_MS", scenario.ack_latency_ms.to_string()),
                ("PREMISE_SANDBOX__LIFECYCLE", scenario.lifecycle.to_string()),
                // The benchmark sends free-form texts to customers who never wrote.
                ("PREMISE_SANDBOX__CUSTOMER_SERVICE_WINDOW", "false".to_owned()),
                ("PREMISE_SANDBOX__DELIVERED_AFTER_MS", "0".to_owned()),
                ("PREMISE_SANDBOX__READ_AFTER_MS", "0".to_owned()),
                ("PREMISE_SANDBOX__JOURNAL", journal.display().to_string()),
            ],
        };
        if let Some(retention) = scenario.retention {
            env.extend(crate::soak::env(&retention));
        }
        let fleet =
            Fleet::start(&self.binary, &database_url, &env, scenario.replicas, &dir).await?;
        if let Some(fake) = &fake {
            let mut statuses = vec!["sent", "delivered"];
            if scenario.lifecycle {
                statuses.push("read");
            }
            let auto = AutoStatuses { statuses, batch: 200, ..AutoStatuses::none() };
            fake.send_webhooks_to(&format!("{}/cloud/webhook", fleet.base), auto);
        }
        let final_status = match (scenario.upstream, scenario.lifecycle) {
            (_, true) => "read",
            (Upstream::Cloud { .. }, false) => "delivered",
            (Upstream::Sandbox, false) => "sent",
        };
        let (receiver, webhook_url) = Receiver::start(final_status).await?;
        let client = Client::login(&fleet.base).await?;
        client.configure(&webhook_url, &scenario).await?;
        let watcher = match self.console {
            true => Some(crate::console::Watcher::start(&fleet.base).await?),
            false => None,
        };
        // Let the sender pool take the shards before the clock starts.
        tokio::time::sleep(Duration::from_secs(3)).await;

        let postmaster = match scenario.database {
            Database::Postgres => self.postgres.as_ref().and_then(Cluster::postmaster_pid),
            Database::Sqlite => None,
        };
        let pids = fleet.pids();
        let replicas_cpu = || pids.iter().map(|&pid| cpu::process(pid)).collect::<Vec<_>>();
        let nginx = fleet.balancer_pid();
        let cpu_before = (replicas_cpu(), postmaster.map(cpu::tree), cpu::this_process());
        let nginx_before = nginx.map(cpu::tree);
        let tally = load::new_tally();
        let started = Instant::now();
        let watch = progress::watch(
            scenario.name,
            tally.clone(),
            receiver.clone(),
            pids.clone(),
            self.quiet,
        );
        let sampler = scenario.retention.map(|retention| {
            let every = retention.sample_every;
            crate::soak::sample(database_url.clone(), pids.clone(), every, started, self.quiet)
        });
        let writing = async {
            match &fake {
                Some(fake) if scenario.customers_per_s > 0 => Some(
                    customers::write(
                        fake.webhooks(),
                        scenario.customers_per_s,
                        scenario.duration,
                        scenario.recipients,
                    )
                    .await,
                ),
                _ => None,
            }
        };
        let ((), mut customers) =
            tokio::join!(load::offer(&client, &scenario, tally.clone()), writing);
        let offered_for = started.elapsed();
        let accepted_count = tally.accepted_count.load(Ordering::Relaxed) as usize;
        let posted = customers.map_or(0, |c| c.posted as usize);
        drain(&receiver, accepted_count, posted).await;
        if let Some(customers) = &mut customers {
            customers.called_back = receiver.inbound() as u64;
        }
        let mut replicas = match scenario.replicas {
            0 | 1 => Vec::new(),
            _ => replicas::scrape(&client, &fleet).await?,
        };
        if let Some(watcher) = watcher {
            let (pages, events) = watcher.stop().await?;
            if !self.quiet {
                eprintln!(
                    "  [{}] a console watched: {pages} pages, {events} live status events",
                    scenario.name
                );
            }
        }
        let series = watch.stop().await;
        let db_samples = match sampler {
            Some(sampler) => sampler.stop().await,
            None => Vec::new(),
        };
        let cpu_after = (replicas_cpu(), postmaster.map(cpu::tree), cpu::this_process());
        let nginx_after = nginx.map(cpu::tree);
        let peak_rss_mb = fleet.replicas.iter().map(|s| s.peak_rss_mb()).fold(0.0, f64::max);
        if let Some(log) = fleet.balancer_log().filter(|l| !l.trim().is_empty() && !self.quiet) {
            eprintln!("  nginx's error log:\n{log}");
        }
        fleet.stop();

        let accepted = std::mem::take(&mut *tally.accepted.lock().expect("tally"));
        let errors = tally.errors.lock().expect("tally").clone();
        let latency = tally.latency_us.lock().expect("tally").clone();
        let (journal, cloud) = match (&fake, scenario.upstream) {
            (Some(fake), Upstream::Cloud { max_per_second, latency_ms }) => {
                let journal = cloud_journal(fake, &accepted);
                let mut figures =
                    cloud_figures(fake, scenario.duration, max_per_second, latency_ms);
                figures.e2e_per_s = rate_over(&receiver.delivered_at(), scenario.duration);
                (journal, Some(figures))
            }
            _ => (read_journal(&journal)?, None),
        };
        let finish = |a: &Accepted| {
            receiver.arrivals(&a.id).and_then(|r| {
                match final_status {
                    "read" => r.read,
                    "delivered" => r.delivered,
                    _ => r.sent,
                }
                .or(r.failed)
            })
        };
        let mut e2e = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
        let mut lost = 0;
        let mut last = started;
        for a in &accepted {
            match finish(a) {
                Some(at) => {
                    e2e.record(at.saturating_duration_since(a.answered).as_micros().max(1) as u64)?;
                    last = last.max(at);
                }
                None => lost += 1,
            }
        }
        let elapsed = last.duration_since(started).as_secs_f64().max(1e-3);
        let accepted_per_s = accepted.len() as f64 / offered_for.as_secs_f64();
        let e2e_per_s = (accepted.len() as u64 - lost) as f64 / elapsed;
        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let per_msg = |seconds: f64| seconds * 1e6 / (accepted.len().max(1) as f64);
        let replica_cpu: Vec<f64> =
            cpu_after.0.iter().zip(&cpu_before.0).map(|(a, b)| per_msg(a - b)).collect();
        for (figures, cpu) in replicas.iter_mut().zip(&replica_cpu) {
            figures.cpu_us_per_msg = *cpu;
        }
        Ok(Outcome {
            name: scenario.name.to_owned(),
            about: scenario.about.to_owned(),
            accepted: accepted.len() as u64,
            accepted_per_s,
            e2e_per_s,
            accept_p50_ms: ms(&latency, 0.5),
            accept_p99_ms: ms(&latency, 0.99),
            accept_p999_ms: ms(&latency, 0.999),
            e2e_p50_ms: ms(&e2e, 0.5),
            e2e_p99_ms: ms(&e2e, 0.99),
            peak_rss_mb,
            errors,
            lost,
            order_violations: order_violations(&accepted, &journal.first_line),
            duplicates: receiver.duplicates(),
            upstream_repeats: journal.repeats,
            ceiling_insert_per_s: Some(ceiling),
            accept_vs_ceiling: Some(accepted_per_s / ceiling),
            e2e_vs_onprem: e2e_per_s / scenario.onprem_per_s,
            elapsed_s: elapsed,
            server_cpu_us_per_msg: replica_cpu.iter().sum(),
            db_cpu_us_per_msg: cpu_after.1.zip(cpu_before.1).map(|(a, b)| per_msg(a - b)),
            bench_cpu_us_per_msg: per_msg(cpu_after.2 - cpu_before.2),
            balancer_cpu_us_per_msg: nginx_after.zip(nginx_before).map(|(a, b)| per_msg(a - b)),
            series,
            scenario,
            cloud,
            db_samples,
            replicas,
            customers,
        })
    }

    fn say(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }
}

/// Waits until every accepted message finished its journey and every customer's message was
/// called back, or nothing moved for 30 s (the rest counts as lost), at most ten minutes.
async fn drain(receiver: &Receiver, accepted: usize, inbound: usize) {
    let give_up = Instant::now() + Duration::from_secs(600);
    let progress = || receiver.finished() + receiver.inbound();
    let (mut seen, mut moved) = (progress(), Instant::now());
    while (receiver.finished() < accepted || receiver.inbound() < inbound)
        && Instant::now() < give_up
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = progress();
        if now != seen {
            (seen, moved) = (now, Instant::now());
        } else if moved.elapsed() > Duration::from_secs(30) {
            return;
        }
    }
}

/// Premise's settings for the Cloud API fake.
fn cloud_env(fake: &FakeCloud, max_per_second: u32) -> Vec<(&'static str, String)> {
    use premise_testkit::cloud::webhooks::DISPLAY_PHONE_NUMBER;
    use premise_testkit::cloud::{ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID};
    vec![
        ("PREMISE_UPSTREAM__KIND", "cloud".to_owned()),
        ("PREMISE_CLOUD__BASE_URL", fake.base_url()),
        ("PREMISE_CLOUD__PHONE_NUMBER_ID", PHONE_NUMBER_ID.to_owned()),
        ("PREMISE_CLOUD__DISPLAY_PHONE_NUMBER", DISPLAY_PHONE_NUMBER.to_owned()),
        ("PREMISE_CLOUD__ACCESS_TOKEN", ACCESS_TOKEN.to_owned()),
        ("PREMISE_CLOUD__APP_SECRET", APP_SECRET.to_owned()),
        ("PREMISE_CLOUD__MAX_PER_SECOND", max_per_second.to_string()),
    ]
}

/// The fake's sends in the order they reached it, as a journal of Premise's ids (each send's
/// `biz_opaque_callback_data` is the tag its message was accepted with).
fn cloud_journal(fake: &FakeCloud, accepted: &[Accepted]) -> Journal {
    let premise_id: HashMap<&str, &str> =
        accepted.iter().filter_map(|a| Some((a.tag.as_deref()?, a.id.as_str()))).collect();
    let mut journal = Journal { first_line: HashMap::new(), repeats: 0 };
    for (n, sent) in fake.accepted().iter().enumerate() {
        let Some(id) =
            sent.body["biz_opaque_callback_data"].as_str().and_then(|t| premise_id.get(t))
        else {
            continue; // not a message the load generator saw accepted
        };
        match journal.first_line.entry((*id).to_owned()) {
            std::collections::hash_map::Entry::Occupied(_) => journal.repeats += 1,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(n);
            }
        }
    }
    journal
}

fn cloud_figures(
    fake: &FakeCloud,
    load: Duration,
    max_per_second: u32,
    latency_ms: u64,
) -> CloudFigures {
    let times: Vec<Instant> = fake.accepted().iter().map(|a| a.at).collect();
    let Some(&first) = times.first() else {
        return CloudFigures {
            max_per_second,
            latency_ms,
            sends: 0,
            per_s: 0.0,
            e2e_per_s: 0.0,
            min_1s: 0,
            max_1s: 0,
            peak_1s: 0,
            invalid: fake.invalid().len() as u64,
        };
    };
    let offsets: Vec<f64> = times.iter().map(|t| t.duration_since(first).as_secs_f64()).collect();
    let window = load.as_secs_f64();
    let in_window = offsets.iter().filter(|&&o| o < window).count();
    let seconds = window.floor() as usize;
    let mut per_second = vec![0u64; seconds.max(1)];
    for &o in &offsets {
        if let Some(slot) = per_second.get_mut(o as usize) {
            *slot += 1;
        }
    }
    // The most sends in any one-second window, the window sliding in 10 ms steps.
    let mut peak = 0;
    let mut start = 0;
    for end in 0..offsets.len() {
        while offsets[end] - offsets[start] >= 1.0 {
            start += 1;
        }
        peak = peak.max(end - start + 1);
    }
    CloudFigures {
        max_per_second,
        latency_ms,
        sends: times.len() as u64,
        per_s: in_window as f64 / window,
        e2e_per_s: 0.0,
        min_1s: per_second.iter().copied().min().unwrap_or(0),
        max_1s: per_second.iter().copied().max().unwrap_or(0),
        peak_1s: peak as u64,
        invalid: fake.invalid().len() as u64,
    }
}

/// Events per second over `window` from the first of `times`.
fn rate_over(times: &[Instant], window: Duration) -> f64 {
    let Some(first) = times.iter().min() else { return 0.0 };
    let within = times.iter().filter(|t| t.duration_since(*first) < window).count();
    within as f64 / window.as_secs_f64()
}

struct Journal {
    /// Message id → the line it first appeared on.
    first_line: HashMap<String, usize>,
    repeats: u64,
}

/// The sandbox's journal: one JSON line per acknowledged send, in the order they reached it.
fn read_journal(path: &Path) -> anyhow::Result<Journal> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut journal = Journal { first_line: HashMap::new(), repeats: 0 };
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        let Some(id) = entry["id"].as_str() else { continue };
        // Keep the first line: the order that counts is the first arrival.
        match journal.first_line.entry(id.to_owned()) {
            std::collections::hash_map::Entry::Occupied(_) => journal.repeats += 1,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(n);
            }
        }
    }
    Ok(journal)
}

/// For each recipient, consecutive messages where the second was sent after the first was
/// accepted (so their acceptance order is defined) but reached the sandbox first.
fn order_violations(accepted: &[Accepted], first_line: &HashMap<String, usize>) -> u64 {
    let mut by_recipient: HashMap<u32, Vec<&Accepted>> = HashMap::new();
    for a in accepted {
        by_recipient.entry(a.recipient).or_default().push(a);
    }
    let mut violations = 0;
    for messages in by_recipient.values_mut() {
        messages.sort_by_key(|a| a.started);
        for pair in messages.windows(2) {
            let (earlier, later) = (pair[0], pair[1]);
            if later.started < earlier.answered {
                continue; // overlapping requests: either order is right
            }
            match (first_line.get(&earlier.id), first_line.get(&later.id)) {
                (Some(a), Some(b)) if a > b => violations += 1,
                (None, Some(_)) => violations += 1,
                _ => {}
            }
        }
    }
    violations
}

impl Outcome {
    pub fn total_errors(&self) -> u64 {
        self.errors.values().sum()
    }
}
