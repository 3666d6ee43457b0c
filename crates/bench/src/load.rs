//! The integration side: logs in, configures webhooks and shards, and offers text messages in a
//! closed loop (concurrent clients) or an open loop (a fixed rate).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::scenario::{Load, Scenario};

/// The password the benchmark gives `admin` at first login.
pub(crate) const PASSWORD: &str = "B3nch!mark-pw";

/// About 200 bytes of message body, as the issue asks.
const BODY: &str = "Your order #00000 has shipped and is on its way. Track it any time in the app; \
    we will let you know when it is out for delivery. Thank you for shopping with us, and have a \
    wonderful day!";

/// A message the server accepted: its id, recipient, and when its request started and was
/// answered.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub id: String,
    /// The `biz_opaque_callback_data` it carried (Cloud scenarios: how the fake's sends are
    /// told apart once retention has deleted the messages).
    pub tag: Option<String>,
    pub recipient: u32,
    pub started: Instant,
    pub answered: Instant,
}

/// What the clients saw, shared while they run.
#[derive(Debug)]
pub struct Tally {
    pub accepted: Mutex<Vec<Accepted>>,
    /// Accept latency in microseconds, from the intended send time.
    pub latency_us: Mutex<Histogram<u64>>,
    /// The same, since the progress watch last took it: the tail second by second.
    pub recent_latency_us: Mutex<Histogram<u64>>,
    pub errors: Mutex<BTreeMap<String, u64>>,
    pub accepted_count: AtomicU64,
    pub error_count: AtomicU64,
    offered: AtomicU64,
    tags: AtomicU64,
}

impl Tally {
    fn new() -> Self {
        Self {
            accepted: Mutex::new(Vec::new()),
            latency_us: Mutex::new(Histogram::new_with_bounds(1, 120_000_000, 3).expect("bounds")),
            recent_latency_us: Mutex::new(
                Histogram::new_with_bounds(1, 120_000_000, 3).expect("bounds"),
            ),
            errors: Mutex::new(BTreeMap::new()),
            accepted_count: AtomicU64::new(0),
            error_count: AtomicU64::new(0),
            offered: AtomicU64::new(0),
            tags: AtomicU64::new(0),
        }
    }

    /// The 99th percentile and the maximum of the accept latency, in milliseconds, since the
    /// last call; the window starts again.
    pub fn take_recent_tail_ms(&self) -> (f64, f64) {
        let Ok(mut h) = self.recent_latency_us.lock() else { return (0.0, 0.0) };
        let tail = (h.value_at_quantile(0.99) as f64 / 1000.0, h.max() as f64 / 1000.0);
        h.reset();
        tail
    }

    /// A tag no other message of the run has.
    fn tag(&self) -> String {
        format!("bench-{}", self.tags.fetch_add(1, Ordering::Relaxed))
    }

    fn error(&self, kind: String) {
        self.error_count.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut errors) = self.errors.lock() {
            *errors.entry(kind).or_default() += 1;
        }
    }
}

/// An integration's session with the server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

pub fn recipient_number(index: u32) -> String {
    format!("1555{index:07}")
}

impl Client {
    /// Logs in as a fresh install's `admin` the way On-Premises integrations do: the first
    /// login sets a new password.
    pub async fn login(base: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(4096)
            .timeout(Duration::from_secs(60))
            .build()?;
        let url = format!("{base}/v1/users/login");
        let first = http
            .post(&url)
            .basic_auth("admin", Some("secret"))
            .json(&json!({"new_password": PASSWORD}))
            .send()
            .await?;
        let answer = if first.status().is_success() {
            first
        } else {
            http.post(&url).basic_auth("admin", Some(PASSWORD)).send().await?
        };
        if !answer.status().is_success() {
            bail!("login failed: {} {}", answer.status(), answer.text().await.unwrap_or_default());
        }
        let body: Value = answer.json().await?;
        let token = body["users"][0]["token"].as_str().context("no token in the login answer")?;
        Ok(Self { http, base: base.to_owned(), token: token.to_owned() })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let answer = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{method} {path}: {status} {body}");
        }
        Ok(body)
    }

    /// A GET of `path` on `base` (one replica, not the balancer) with this session's token:
    /// the body as text.
    pub async fn get_text(&self, base: &str, path: &str) -> anyhow::Result<String> {
        let answer = self.http.get(format!("{base}{path}")).bearer_auth(&self.token).send().await?;
        let status = answer.status();
        let text = answer.text().await?;
        if !status.is_success() {
            bail!("GET {path}: {status} {text}");
        }
        Ok(text)
    }

    /// Points webhooks at `url` with `sent` callbacks on (On-Premises leaves them off), and
    /// `delivered`/`read` as the scenario wants; sets the shard count and waits until the
    /// server reports it.
    pub async fn configure(&self, webhook_url: &str, scenario: &Scenario) -> anyhow::Result<()> {
        let lifecycle = scenario.lifecycle;
        // With the Cloud API fake, the journey ends at the `delivered` its webhook brings back.
        let delivered =
            lifecycle || matches!(scenario.upstream, crate::scenario::Upstream::Cloud { .. });
        self.call(
            reqwest::Method::PATCH,
            "/v1/settings/application",
            json!({"webhooks": {"url": webhook_url,
                "message": {"sent": true, "delivered": delivered, "read": lifecycle}}}),
        )
        .await?;
        self.call(
            reqwest::Method::POST,
            "/v1/account/shards",
            json!({"cc": "1", "phone_number": "5550100", "shards": scenario.shards}),
        )
        .await?;
        let shards = self.call(reqwest::Method::GET, "/v1/account/shards", Value::Null).await?;
        if shards["account"]["shards"] != scenario.shards {
            bail!(
                "the server reports {} shards, not {}",
                shards["account"]["shards"],
                scenario.shards
            );
        }
        Ok(())
    }

    /// Posts one text message, with `tag` as its `biz_opaque_callback_data`; `Ok(id)` when
    /// accepted, otherwise the error's kind.
    async fn send(&self, recipient: u32, tag: Option<&str>) -> Result<String, String> {
        let mut body = json!({"to": recipient_number(recipient), "type": "text",
            "recipient_type": "individual", "text": {"body": BODY}});
        if let Some(tag) = tag {
            body["biz_opaque_callback_data"] = json!(tag);
        }
        let answer = self
            .http
            .post(format!("{}/v1/messages", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                format!("transport: {}", if e.is_timeout() { "timeout" } else { "error" })
            })?;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        if status.as_u16() == 201 {
            if let Some(id) = body["messages"][0]["id"].as_str() {
                return Ok(id.to_owned());
            }
            return Err("201 without an id".to_owned());
        }
        Err(match body["errors"][0]["code"].as_u64() {
            Some(code) => format!("{} ({code})", status.as_u16()),
            None => status.as_u16().to_string(),
        })
    }

    fn record(
        &self,
        tally: &Tally,
        recipient: u32,
        tag: Option<String>,
        intended: Instant,
        started: Instant,
        result: Result<String, String>,
    ) {
        let answered = Instant::now();
        match result {
            Ok(id) => {
                let micros = answered.duration_since(intended).as_micros() as u64;
                for histogram in [&tally.latency_us, &tally.recent_latency_us] {
                    if let Ok(mut h) = histogram.lock() {
                        let _ = h.record(micros.max(1));
                    }
                }
                if let Ok(mut accepted) = tally.accepted.lock() {
                    accepted.push(Accepted { id, tag, recipient, started, answered });
                }
                tally.accepted_count.fetch_add(1, Ordering::Relaxed);
            }
            Err(kind) => tally.error(kind),
        }
    }
}

/// Offers the scenario's load until its duration or message count runs out. The tally can be
/// watched while this runs.
pub async fn offer(client: &Client, scenario: &Scenario, tally: Arc<Tally>) {
    let deadline = Instant::now() + scenario.duration;
    let limit = scenario.max_messages.unwrap_or(u64::MAX);
    let recipients = scenario.recipients as u32;
    let tagged = matches!(scenario.upstream, crate::scenario::Upstream::Cloud { .. });
    match scenario.load {
        Load::Closed { clients } => {
            let mut tasks = tokio::task::JoinSet::new();
            for index in 0..clients as u32 {
                let (client, tally) = (client.clone(), tally.clone());
                // Each client has recipients of its own, so one recipient's messages are sent
                // one after the other and their acceptance order is known.
                let own: Vec<u32> = (index..recipients).step_by(clients).collect();
                tasks.spawn(async move {
                    for &recipient in own.iter().cycle() {
                        if Instant::now() >= deadline
                            || tally.offered.fetch_add(1, Ordering::Relaxed) >= limit
                        {
                            return;
                        }
                        let tag = tagged.then(|| tally.tag());
                        let started = Instant::now();
                        let result = client.send(recipient, tag.as_deref()).await;
                        client.record(&tally, recipient, tag, started, started, result);
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
        }
        Load::Open { per_second } => {
            let start = tokio::time::Instant::now();
            let in_flight = Arc::new(tokio::sync::Semaphore::new(20_000));
            let mut tasks = tokio::task::JoinSet::new();
            for k in 0u64.. {
                let intended_at = start + Duration::from_secs_f64(k as f64 / f64::from(per_second));
                if intended_at.into_std() >= deadline || k >= limit {
                    break;
                }
                tokio::time::sleep_until(intended_at).await;
                let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                    tally.error("client: 20,000 requests in flight".to_owned());
                    continue;
                };
                let (client, tally) = (client.clone(), tally.clone());
                let recipient = (k % u64::from(recipients)) as u32;
                let tag = tagged.then(|| tally.tag());
                tasks.spawn(async move {
                    let started = Instant::now();
                    let result = client.send(recipient, tag.as_deref()).await;
                    let intended = intended_at.into_std();
                    client.record(&tally, recipient, tag, intended, started, result);
                    drop(permit);
                });
                while tasks.try_join_next().is_some() {}
            }
            while tasks.join_next().await.is_some() {}
        }
    }
}

pub fn new_tally() -> Arc<Tally> {
    Arc::new(Tally::new())
}
