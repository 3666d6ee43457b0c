//! The named scenarios: which database, how many shards, how the sandbox behaves and how load
//! is offered.

use std::time::Duration;

/// The database a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Database {
    Postgres,
    Sqlite,
}

/// How requests are offered.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Load {
    /// `clients` concurrent clients, each sending its next message as soon as the previous one
    /// is answered.
    Closed { clients: usize },
    /// Messages at a fixed rate whatever the answers; latency counts from the intended send
    /// time, so time spent queueing is not hidden (no coordinated omission).
    Open { per_second: u32 },
}

/// Where messages are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Upstream {
    /// The built-in sandbox.
    Sandbox,
    /// The Cloud API fake (`premise_testkit::cloud`), with `cloud.max_per_second` set and the
    /// fake answering after `latency_ms`. It sends `sent` and `delivered` back as signed
    /// webhooks; end to end means the `delivered` callback, the whole round trip.
    Cloud { max_per_second: u32, latency_ms: u64 },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub database: Database,
    pub shards: u32,
    /// Sandbox time from a send to its acknowledgement.
    pub ack_latency_ms: u64,
    /// Whether `delivered` and `read` follow (and are called back); otherwise messages stay
    /// `sent` and end to end means the `sent` callback.
    pub lifecycle: bool,
    pub load: Load,
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    /// Stop offering load after this many messages, whatever the duration.
    pub max_messages: Option<u64>,
    /// Distinct recipients the messages go to.
    pub recipients: usize,
    /// The real On-Premises client's figure for this shard count, msg/s.
    pub onprem_per_s: f64,
    pub upstream: Upstream,
    /// `[retention]` for the run (finished messages kept this long, a pass every
    /// `retention_interval`), and the database's size and row counts sampled every
    /// `sample_every` while it runs; `None`: Premise's defaults, no sampling.
    pub retention: Option<Retention>,
    /// Premise processes on the one database; more than one run behind nginx configured as
    /// `deploy/nginx.conf` (the compose file's shape), and the load goes through it.
    pub replicas: u32,
    /// Customer messages the Cloud API fake posts to Premise a second (each its own signed
    /// webhook, from the scenario's recipients), called back to the integration as inbound
    /// messages; 0: none.
    pub customers_per_s: u32,
}

/// A soak's retention and sampling.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Retention {
    /// Seconds finished messages are kept; 0 keeps them forever (the baseline).
    pub keep_secs: u64,
    #[serde(serialize_with = "secs")]
    pub interval: Duration,
    #[serde(serialize_with = "secs")]
    pub sample_every: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The real client's figures (seed `000_b992d62e10f651f9.txt`): text messages per second.
pub const ONPREM_ONE_SHARD: f64 = 70.0;
pub const ONPREM_32_SHARDS: f64 = 250.0;

/// Concurrent clients of the closed-loop scenarios (and of the ceiling measurement).
pub const CLIENTS: usize = 64;

pub const NAMES: [&str; 19] = [
    "smoke",
    "cloud-smoke",
    "soak-smoke",
    "replicas-smoke",
    "cloud-soak-smoke",
    "pg-1",
    "pg-32",
    "replicas-3",
    "pg-1-latency20",
    "sqlite-1",
    "lifecycle",
    "sqlite-lifecycle",
    "fixed-2000",
    "cloud-1000",
    "cloud-1000-latency20",
    "cloud-80",
    "soak",
    "soak-keep",
    "cloud-soak",
];

/// A Cloud scenario offers this much more than the throughput it is set to, so the limit, not
/// the load, sets the pace.
const CLOUD_OVERLOAD: f64 = 1.2;

impl Scenario {
    fn base(name: &'static str, about: &'static str, database: Database, shards: u32) -> Self {
        Self {
            name,
            about,
            database,
            shards,
            ack_latency_ms: 0,
            lifecycle: false,
            load: Load::Closed { clients: CLIENTS },
            duration: Duration::from_secs(60),
            max_messages: None,
            recipients: 10_000,
            onprem_per_s: if shards == 1 { ONPREM_ONE_SHARD } else { ONPREM_32_SHARDS },
            upstream: Upstream::Sandbox,
            retention: None,
            replicas: 1,
            customers_per_s: 0,
        }
    }

    /// Postgres, 32 shards, `per_second` offered for `duration`, every message through to
    /// `read`, finished messages kept `keep_secs` (0: forever), the database sampled.
    fn soak(
        name: &'static str,
        about: &'static str,
        per_second: u32,
        duration: Duration,
        retention: Retention,
    ) -> Self {
        Self {
            lifecycle: true,
            load: Load::Open { per_second },
            duration,
            retention: Some(retention),
            ..Self::base(name, about, Database::Postgres, 32)
        }
    }

    /// Postgres, 32 shards, the Cloud API fake at `max_per_second`, offered 20% more.
    fn cloud(
        name: &'static str,
        about: &'static str,
        max_per_second: u32,
        latency_ms: u64,
    ) -> Self {
        Self {
            load: Load::Open { per_second: (f64::from(max_per_second) * CLOUD_OVERLOAD) as u32 },
            upstream: Upstream::Cloud { max_per_second, latency_ms },
            ..Self::base(name, about, Database::Postgres, 32)
        }
    }

    /// The bridge for `duration` at Meta's top tier: 1,000 msg/s offered and allowed, the fake
    /// sending `sent`, `delivered` and `read` back and `customers_per_s` customers writing,
    /// everything finished kept `keep_secs`, the database sampled.
    fn cloud_soak(
        name: &'static str,
        about: &'static str,
        per_second: u32,
        customers_per_s: u32,
        duration: Duration,
        retention: Retention,
    ) -> Self {
        Self {
            lifecycle: true,
            load: Load::Open { per_second },
            duration,
            retention: Some(retention),
            customers_per_s,
            ..Self::cloud(name, about, per_second, 0)
        }
    }

    /// Postgres, 32 shards, `replicas` processes behind nginx.
    fn replicas(name: &'static str, about: &'static str, replicas: u32) -> Self {
        Self { replicas, ..Self::base(name, about, Database::Postgres, 32) }
    }

    /// The scenario called `name`; `all` is every one but the smoke and soak ones.
    pub fn named(name: &str) -> Option<Vec<Self>> {
        use Database::{Postgres, Sqlite};
        let one = match name {
            "smoke" => Self {
                load: Load::Closed { clients: 16 },
                duration: Duration::from_secs(20),
                max_messages: Some(3_000),
                recipients: 300,
                ..Self::base("smoke", "SQLite, 1 shard, 3,000 messages: the tool works", Sqlite, 1)
            },
            "pg-1" => Self::base("pg-1", "Postgres, 1 shard, sandbox 0 ms", Postgres, 1),
            "pg-32" => Self::base("pg-32", "Postgres, 32 shards, sandbox 0 ms", Postgres, 32),
            "replicas-3" => Self::replicas(
                "replicas-3",
                "Postgres, 32 shards, 3 replicas behind nginx (deploy/nginx.conf), sandbox 0 ms",
                3,
            ),
            "replicas-smoke" => Self {
                load: Load::Closed { clients: 16 },
                duration: Duration::from_secs(20),
                max_messages: Some(3_000),
                recipients: 300,
                shards: 8,
                ..Self::replicas(
                    "replicas-smoke",
                    "Postgres, 8 shards, 3 replicas behind nginx, 3,000 messages: the tool works",
                    3,
                )
            },
            "pg-1-latency20" => Self {
                ack_latency_ms: 20,
                ..Self::base("pg-1-latency20", "Postgres, 1 shard, sandbox 20 ms", Postgres, 1)
            },
            "sqlite-1" => Self::base("sqlite-1", "SQLite, 1 shard, sandbox 0 ms", Sqlite, 1),
            "lifecycle" => Self {
                lifecycle: true,
                ..Self::base(
                    "lifecycle",
                    "Postgres, 32 shards, sent + delivered + read callbacks; end to end is `read`",
                    Postgres,
                    32,
                )
            },
            "sqlite-lifecycle" => Self {
                lifecycle: true,
                ..Self::base(
                    "sqlite-lifecycle",
                    "SQLite, 1 shard (the default deployment), sent + delivered + read callbacks",
                    Sqlite,
                    1,
                )
            },
            "fixed-2000" => Self {
                load: Load::Open { per_second: 2_000 },
                ..Self::base("fixed-2000", "Postgres, 32 shards, 2,000 msg/s offered", Postgres, 32)
            },
            "cloud-smoke" => Self {
                database: Sqlite,
                shards: 4,
                duration: Duration::from_secs(5),
                recipients: 300,
                ..Self::cloud(
                    "cloud-smoke",
                    "SQLite, 4 shards, Cloud API fake at 200 msg/s for 5 s: the tool works",
                    200,
                    0,
                )
            },
            "cloud-1000" => Self::cloud(
                "cloud-1000",
                "Postgres, 32 shards, Cloud API fake at 0 ms, max_per_second 1000",
                1_000,
                0,
            ),
            "cloud-1000-latency20" => Self::cloud(
                "cloud-1000-latency20",
                "Postgres, 32 shards, Cloud API fake at 20 ms, max_per_second 1000",
                1_000,
                20,
            ),
            "cloud-80" => Self::cloud(
                "cloud-80",
                "Postgres, 32 shards, Cloud API fake at 0 ms, max_per_second 80 (the default)",
                80,
                0,
            ),
            "soak" => Self::soak(
                "soak",
                "Postgres, 32 shards, 1,000 msg/s for 10 min to `read`, retention 60 s",
                1_000,
                Duration::from_secs(600),
                Retention {
                    keep_secs: 60,
                    interval: Duration::from_secs(10),
                    sample_every: Duration::from_secs(60),
                },
            ),
            "soak-keep" => Self::soak(
                "soak-keep",
                "the soak without retention (kept forever): the baseline of size and latency",
                1_000,
                Duration::from_secs(600),
                Retention {
                    keep_secs: 0,
                    interval: Duration::from_secs(10),
                    sample_every: Duration::from_secs(60),
                },
            ),
            "soak-smoke" => Self {
                recipients: 300,
                ..Self::soak(
                    "soak-smoke",
                    "the soak for 20 s at 200 msg/s, retention 3 s: the tool works",
                    200,
                    Duration::from_secs(20),
                    Retention {
                        keep_secs: 3,
                        interval: Duration::from_secs(1),
                        sample_every: Duration::from_secs(5),
                    },
                )
            },
            "cloud-soak" => Self::cloud_soak(
                "cloud-soak",
                "the bridge for 10 min: 1,000 msg/s to `read`, 100 customers' messages/s back, retention 60 s",
                1_000,
                100,
                Duration::from_secs(600),
                Retention {
                    keep_secs: 60,
                    interval: Duration::from_secs(10),
                    sample_every: Duration::from_secs(60),
                },
            ),
            "cloud-soak-smoke" => Self {
                database: Sqlite,
                shards: 4,
                recipients: 300,
                ..Self::cloud_soak(
                    "cloud-soak-smoke",
                    "the bridge soak for 20 s on SQLite at 200 msg/s, 20 customers' messages/s, retention 3 s: the tool works",
                    200,
                    20,
                    Duration::from_secs(20),
                    Retention {
                        keep_secs: 3,
                        interval: Duration::from_secs(1),
                        sample_every: Duration::from_secs(5),
                    },
                )
            },
            "all" => {
                return Some(
                    NAMES
                        .iter()
                        .filter(|n| !n.contains("smoke") && !n.contains("soak"))
                        .filter_map(|n| Self::named(n))
                        .flatten()
                        .collect(),
                );
            }
            _ => return None,
        };
        Some(vec![one])
    }

    pub fn clients(&self) -> usize {
        match self.load {
            Load::Closed { clients } => clients,
            Load::Open { .. } => CLIENTS,
        }
    }
}
