//! The webhook half of the shard workers: one dispatcher per process POSTs the status callbacks
//! of every shard the process holds to `webhooks.url`, in order for each message (a message's
//! next callback waits until the previous one got its 2xx), many messages at once, each POST
//! filled up to `max_statuses_per_request` from all the shards: one read, a few POSTs and one
//! write (the outcomes, each attempt logged for the console) a round, where a dispatcher per
//! shard made as many of each as there were shards. A round POSTs all that its read holds (up to
//! four POSTs for each of the `max_concurrent_requests` allowed in flight, which the permits
//! keep in flight), and while a backlog is known to wait the next round goes at once; only
//! otherwise do rounds keep `callbacks.read_gap_ms` apart (so one shard's webhooks have no
//! ceiling of their own, where rounds of six POSTs 50 ms apart capped them near 6,000 a
//! second). A failure is retried on the On-Premises schedule (linear steps of
//! `callback_backoff_delay_ms` up to `max_callback_backoff_delay_ms`), kept in the store so it
//! survives restarts. Redirects are not followed: a 3xx is a failure.
//!
//! A callback is POSTed only while its shard's lease holds, checked just before the POST (after
//! the read, which may have waited on the database, and the wait for a permit): a replica that
//! was cut off or frozen past its lease does not deliver, after the shard's new owner did, what
//! it had read before. What is left is a POST whose delivery could not be recorded (the
//! database gone at that moment), delivered again later.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use premise_base::{Clock, millis};
use premise_store::{Attempt, PendingCallback, Settled, Store};
use premise_upstream::Fence;
use premise_wire::cloud_webhooks::CloudIdentity;
use premise_wire::{AppSettings, WebhookFormat};
use sha2::Sha256;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{EngineConfig, Metrics, SettingsCache, WebhookHttp};

/// Permits shared by all dispatchers of a process. A POST takes `PERMITS / max_concurrent_requests`
/// of them, which caps the process at `max_concurrent_requests` (6, 12, 18 or 24, all divisors).
pub(crate) const PERMITS: u32 = 72;
/// Callbacks read a round for each shard held.
const READ_PER_SHARD: u32 = 1_000;
/// POSTs a round may make for each of the `max_concurrent_requests` a shard held allows: the
/// permits keep at most that many in flight, the rest wait for one, so a backlog is read and
/// settled a few hundred callbacks at a time rather than one POST's worth.
const ROUND_DEPTH: usize = 4;

/// What a round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing to deliver: look again after this (sooner if told callbacks are ready).
    Idle(Duration),
    /// Delivered (or tried) a round; `more` when a backlog is known to wait, so the next round
    /// goes at once instead of after the read gap.
    Delivered { more: bool },
}

/// The shards whose callbacks the process's dispatcher delivers: each registered by its worker
/// for as long as the worker holds the shard ([`ShardSet::serve`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct ShardSet(Arc<ShardSetInner>);

#[derive(Debug, Default)]
struct ShardSetInner {
    /// Each shard with its lease, as its worker holds it.
    shards: Mutex<BTreeMap<u32, Fence>>,
    /// Held by the dispatcher through each round (read, POSTs, records): a shard leaving waits
    /// for the round under way, so none of its callbacks is in flight once it has left.
    round: tokio::sync::Mutex<()>,
}

impl ShardSet {
    #[cfg(test)]
    pub fn of(shards: &[u32], fence: &Fence) -> Self {
        let set = Self::default();
        set.0
            .shards
            .lock()
            .expect("shard set lock")
            .extend(shards.iter().map(|s| (*s, fence.clone())));
        set
    }

    fn list(&self) -> Vec<u32> {
        self.0.shards.lock().expect("shard set lock").keys().copied().collect()
    }

    /// The leases of the shards held now.
    fn fences(&self) -> HashMap<u32, Fence> {
        let shards = self.0.shards.lock().expect("shard set lock");
        shards.iter().map(|(shard, fence)| (*shard, fence.clone())).collect()
    }

    /// Has `shard`'s callbacks delivered until `stop`; once this returns, none of them is
    /// being delivered, so another replica may take the shard. (If the future is dropped
    /// instead, the shard leaves at once, without waiting for the round.)
    pub async fn serve(&self, shard: u32, fence: Fence, stop: CancellationToken, ready: &Notify) {
        struct Member<'a>(&'a ShardSet, u32);
        impl Drop for Member<'_> {
            fn drop(&mut self) {
                self.0.0.shards.lock().expect("shard set lock").remove(&self.1);
            }
        }
        self.0.shards.lock().expect("shard set lock").insert(shard, fence);
        let member = Member(self, shard);
        ready.notify_waiters();
        stop.cancelled().await;
        drop(member);
        let _round = self.0.round.lock().await;
    }
}

pub(crate) struct Dispatcher {
    pub shards: ShardSet,
    pub store: Arc<dyn Store>,
    pub settings: SettingsCache,
    pub http: WebhookHttp,
    pub permits: Arc<Semaphore>,
    pub config: Arc<EngineConfig>,
    pub ready: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
}

impl Dispatcher {
    pub async fn run(self, stop: CancellationToken) {
        while !stop.is_cancelled() {
            let started_ms = self.clock.now_ms();
            let round = self.shards.0.round.lock().await;
            let wait = match self.step().await {
                Ok(Step::Idle(wait)) => wait,
                Ok(Step::Delivered { more: false }) => Duration::ZERO,
                Ok(Step::Delivered { more: true }) => {
                    // A backlog: the next round at once, no gap (the permits pace the POSTs).
                    drop(round);
                    if stop.is_cancelled() {
                        return;
                    }
                    tokio::task::yield_now().await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "callback delivery step failed");
                    self.config.poll_interval * 10
                }
            };
            drop(round);
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.ready.notified() => {}
                () = self.clock.sleep(wait) => {}
            }
            // Whatever woke us, read no sooner than the gap after the previous read.
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.clock.sleep_until_ms(started_ms + millis(self.config.callback_read_gap)) => {}
            }
        }
    }

    /// Delivers one round of callbacks: what it did, or how long to wait for something to do.
    pub(crate) async fn step(&self) -> anyhow::Result<Step> {
        let (_, settings) = self.settings.get().await?;
        let idle = self.config.poll_interval;
        let Some(url) = settings.webhook_url.clone() else { return Ok(Step::Idle(idle)) };
        let shards = self.shards.list();
        if shards.is_empty() {
            return Ok(Step::Idle(idle));
        }
        // As much a round as a dispatcher per shard took: 1,000 callbacks and
        // `max_concurrent_requests` POSTs for each shard held (the permits keep at most
        // `max_concurrent_requests` POSTs in flight). A message's later callbacks wait behind
        // its first, so a short read would leave most of a backlog undeliverable each round.
        let held = u32::try_from(shards.len()).unwrap_or(u32::MAX);
        let read = READ_PER_SHARD * held;
        let pending = self.store.pending_callbacks(&shards, read).await?;
        let read_all = pending.len() < read as usize;
        let now = self.clock.now_ms();
        let max_batches = settings.max_concurrent_requests as usize * shards.len() * ROUND_DEPTH;
        let (batches, next_due) = pick(pending, now, self.config.webhook_batch.max(1), max_batches);
        if batches.is_empty() {
            let wait = next_due
                .map_or(idle, |at| Duration::from_millis((at - now).max(1) as u64).min(idle));
            return Ok(Step::Idle(wait));
        }
        // More is known to wait when the round could not take all that was due, or the read
        // did not reach the end of the outbox.
        let more = batches.len() >= max_batches || !read_all;
        self.http.refresh(&self.store).await;
        let posts = self.post_all(batches, &url, &settings);
        let attempts = settle(posts).await?;
        let failed = attempts.iter().any(|(_, a)| a.error.is_some());
        self.record_outcome(attempts, &settings).await?;
        // A failing receiver is not hurried: the next round waits for the gap.
        Ok(Step::Delivered { more: more && !failed })
    }

    /// How this round's POSTs are signed and shaped: the integration's secret (or, for
    /// Cloud-form webhooks without one, the Meta app's secret, as Meta signs), and the Cloud
    /// identity when webhooks take the Cloud API's form.
    fn signing(&self, settings: &AppSettings) -> (Option<String>, Option<CloudIdentity>) {
        let secret = settings.webhook_secret.clone();
        match settings.webhook_format {
            WebhookFormat::OnPrem => (secret, None),
            WebhookFormat::Cloud => {
                let app_secret = self.config.cloud_app_secret.expose();
                let secret =
                    secret.or_else(|| (!app_secret.is_empty()).then(|| app_secret.to_owned()));
                (secret, Some(self.config.cloud_identity.clone()))
            }
        }
    }

    /// POSTs the batches, at most `max_concurrent_requests` at once: each task answers its
    /// batch (only the callbacks of shards still held when it left) and the attempt, or
    /// nothing if none of its shards was still held.
    fn post_all(
        &self,
        batches: Vec<Vec<PendingCallback>>,
        url: &str,
        settings: &AppSettings,
    ) -> JoinSet<Option<(Vec<PendingCallback>, Attempt)>> {
        let client = self.http.client();
        let fences = Arc::new(self.shards.fences());
        let per_request = PERMITS / settings.max_concurrent_requests.clamp(1, PERMITS);
        let (secret, form) = self.signing(settings);
        let mut posts = JoinSet::new();
        for batch in batches {
            let http = client.clone();
            let (url, secret, form, permits, metrics, fences, clock) = (
                url.to_owned(),
                secret.clone(),
                form.clone(),
                self.permits.clone(),
                self.metrics.clone(),
                fences.clone(),
                self.clock.clone(),
            );
            posts.spawn(async move {
                let _permit = permits.acquire_many_owned(per_request).await;
                // Just before the POST: only callbacks of shards whose lease still holds; the
                // others are left in the store for the shard's owner.
                let mut batch = batch;
                batch.retain(|c| fences.get(&c.shard).is_some_and(Fence::holds));
                if batch.is_empty() {
                    return None;
                }
                let at = clock.now();
                let started = std::time::Instant::now();
                let body = body(&batch, form.as_ref());
                let answer = post(&http, &url, secret.as_deref(), body).await;
                let latency = started.elapsed();
                metrics.callback_latency.observe(latency);
                if answer.is_ok() {
                    Metrics::add(&metrics.callback_posts_ok, 1);
                    Metrics::add(&metrics.callbacks_delivered, batch.len() as u64);
                } else {
                    Metrics::add(&metrics.callback_posts_failed, 1);
                }
                let http_status = match &answer {
                    Ok(status) | Err(Undelivered::Refused(status)) => Some(status.as_u16()),
                    Err(Undelivered::Failed(_)) => None,
                };
                let error = answer.err().map(|why| why.to_string());
                Some((batch, Attempt { at, http_status, latency, error }))
            });
        }
        posts
    }

    /// Deletes what was delivered; what failed is retried later (by its failure count's
    /// delay) or, with `callback_persist` off, dropped. Every attempt is logged with it.
    async fn record_outcome(
        &self,
        attempts: Vec<(Vec<PendingCallback>, Attempt)>,
        settings: &AppSettings,
    ) -> anyhow::Result<()> {
        let mut settled = Vec::with_capacity(attempts.len());
        for (batch, attempt) in attempts {
            let retried = match &attempt.error {
                None => false,
                Some(why) if settings.callback_persist => {
                    tracing::info!(callbacks = batch.len(), %why, "webhook delivery failed; will retry");
                    true
                }
                Some(why) => {
                    tracing::warn!(
                        callbacks = batch.len(),
                        %why,
                        "callback_persist is off: dropping callbacks the receiver refused"
                    );
                    false
                }
            };
            if !retried {
                // Delivered, or given up on: done with.
                let seqs = batch.iter().map(|c| c.seq).collect();
                settled.push(Settled { seqs, attempt, retry_at: None });
                continue;
            }
            // Each callback waits by the number of failures it reaches.
            let mut by_failures: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
            for c in &batch {
                by_failures.entry(c.failures + 1).or_default().push(c.seq);
            }
            for (failures, seqs) in by_failures {
                let delay = Duration::from_millis(settings.callback_retry_delay_ms(failures));
                let retry_at = Some(self.clock.now().plus(delay));
                settled.push(Settled { seqs, attempt: attempt.clone(), retry_at });
            }
        }
        self.store.settle_callbacks(&settled).await?;
        Ok(())
    }
}

/// Waits for every POST of a round: each batch POSTed, with its attempt.
async fn settle(
    mut posts: JoinSet<Option<(Vec<PendingCallback>, Attempt)>>,
) -> anyhow::Result<Vec<(Vec<PendingCallback>, Attempt)>> {
    let mut attempts = Vec::new();
    while let Some(joined) = posts.join_next().await {
        attempts.extend(joined?);
    }
    Ok(attempts)
}

/// Chooses what to send now: the first pending callback of each message (later ones wait for
/// it), if due, in batches of `batch_size` (an inbound message is a batch of its own), at most
/// `max_batches` batches. Also returns when the
/// earliest not-yet-due head falls due.
pub(crate) fn pick(
    pending: Vec<PendingCallback>,
    now: i64,
    batch_size: usize,
    max_batches: usize,
) -> (Vec<Vec<PendingCallback>>, Option<i64>) {
    let mut seen = HashSet::new();
    let mut batches: Vec<Vec<PendingCallback>> = Vec::new();
    let mut current = Vec::new();
    let mut next_due: Option<i64> = None;
    for callback in pending {
        if !seen.insert(callback.message_id.clone()) {
            continue;
        }
        let due = callback.next_attempt_at.ms();
        if due > now {
            next_due = Some(next_due.map_or(due, |d| d.min(due)));
            continue;
        }
        if callback.inbound {
            // A whole webhook body of its own.
            batches.push(vec![callback]);
        } else {
            current.push(callback);
            if current.len() == batch_size {
                batches.push(std::mem::take(&mut current));
            }
        }
        if batches.len() >= max_batches.max(1) {
            return (batches, next_due);
        }
    }
    if !current.is_empty() {
        batches.push(current);
    }
    (batches, next_due)
}

/// The webhook body of a batch: On-Premises' `{"statuses":[...]}` (or an inbound message's own
/// body), or with `cloud`, the Cloud API's form of the same.
fn body(batch: &[PendingCallback], cloud: Option<&CloudIdentity>) -> String {
    match (batch, cloud) {
        ([only], None) if only.inbound => only.body.clone(),
        (_, None) => {
            let mut body = String::from(r#"{"statuses":["#);
            for (i, c) in batch.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(&c.body);
            }
            body.push_str("]}");
            body
        }
        ([only], Some(identity)) if only.inbound => {
            let inbound = serde_json::from_str(&only.body).unwrap_or(serde_json::Value::Null);
            identity.inbound(&inbound).to_string()
        }
        (_, Some(identity)) => {
            let statuses: Vec<serde_json::Value> =
                batch.iter().filter_map(|c| serde_json::from_str(&c.body).ok()).collect();
            identity.statuses(&statuses).to_string()
        }
    }
}

/// Why a webhook POST was not taken (it is tried again later).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Undelivered {
    #[error("the receiver answered {0}")]
    Refused(reqwest::StatusCode),
    #[error("the request failed: {0}")]
    Failed(reqwest::Error),
}

/// POSTs `body`: the receiver's status when it is a 2xx.
async fn post(
    http: &reqwest::Client,
    url: &str,
    secret: Option<&str>,
    body: String,
) -> Result<reqwest::StatusCode, Undelivered> {
    let mut request = http.post(url).header("content-type", "application/json");
    if let Some(secret) = secret {
        request = request
            .header("x-hub-signature-256", format!("sha256={}", sign(secret, body.as_bytes())));
    }
    match request.body(body).send().await {
        Ok(response) if response.status().is_success() => Ok(response.status()),
        Ok(response) => Err(Undelivered::Refused(response.status())),
        Err(e) => Err(Undelivered::Failed(e)),
    }
}

/// Hex HMAC-SHA256 of the raw body: the Cloud API's `X-Hub-Signature-256` scheme.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use premise_base::UnixMs;

    use super::*;

    fn cb(seq: i64, message: &str, due: i64) -> PendingCallback {
        PendingCallback {
            seq,
            shard: 0,
            message_id: message.into(),
            body: "{}".into(),
            inbound: false,
            failures: 0,
            next_attempt_at: UnixMs(due),
            last_error: None,
        }
    }

    #[test]
    fn one_callback_per_message_in_order_and_only_when_due() {
        let pending =
            vec![cb(1, "a", 0), cb(2, "a", 0), cb(3, "b", 500), cb(4, "b", 0), cb(5, "c", 0)];
        let (batches, next) = pick(pending, 100, 10, 6);
        let seqs: Vec<i64> = batches.concat().iter().map(|c| c.seq).collect();
        assert_eq!(seqs, [1, 5], "a's second waits for its first; b's head is not due");
        assert_eq!(next, Some(500));
        let many: Vec<_> = (0..10).map(|i| cb(i, &i.to_string(), 0)).collect();
        let (batches, _) = pick(many, 0, 3, 2);
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3]);
        let inbound = |seq, message: &str| PendingCallback { inbound: true, ..cb(seq, message, 0) };
        let mixed = vec![cb(1, "a", 0), inbound(2, "in1"), cb(3, "b", 0), inbound(4, "in2")];
        let (batches, _) = pick(mixed, 0, 10, 6);
        let seqs: Vec<Vec<i64>> =
            batches.iter().map(|b| b.iter().map(|c| c.seq).collect()).collect();
        assert_eq!(seqs, [vec![2], vec![4], vec![1, 3]], "inbound messages go alone");
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

#[cfg(test)]
mod backoff_tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use axum::extract::State;
    use axum::http::StatusCode;
    use premise_store::{NewCallback, StatusPlan, StatusUpdate};
    use premise_wire::MessageStatus;

    use super::*;
    use crate::testing::{Setup, T0, message, setup};
    use premise_base::UnixMs;

    /// A webhook receiver that answers with the statuses it is given, in turn (then 200), and
    /// counts.
    #[derive(Clone, Default)]
    pub(super) struct Receiver {
        answers: Arc<Mutex<Vec<u16>>>,
        hits: Arc<Mutex<usize>>,
        pub url: String,
    }

    impl Receiver {
        pub fn hits(&self) -> usize {
            *self.hits.lock().unwrap()
        }
    }

    async fn answer(State(receiver): State<Receiver>) -> StatusCode {
        *receiver.hits.lock().unwrap() += 1;
        let next = receiver.answers.lock().unwrap().pop().unwrap_or(200);
        StatusCode::from_u16(next).unwrap()
    }

    /// A receiver giving `answers`, and a dispatcher for shard 0 on the setup's clock.
    pub(super) async fn started(setup: &Setup, answers: &[u16]) -> (Receiver, Dispatcher) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            answers: Arc::new(Mutex::new(answers.iter().rev().copied().collect())),
            hits: Arc::default(),
            url: format!("http://{}/hook", listener.local_addr().unwrap()),
        };
        let app = axum::Router::new().fallback(answer).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let dispatcher = Dispatcher {
            shards: ShardSet::of(&[0], &Fence::open(setup.clock.clone())),
            store: setup.store.clone(),
            settings: setup.settings.clone(),
            http: WebhookHttp::new(Duration::from_secs(5)),
            permits: Arc::new(Semaphore::new(PERMITS as usize)),
            config: setup.config.clone(),
            ready: Arc::new(Notify::new()),
            metrics: Metrics::new(setup.clock.clone()),
            clock: setup.clock.clone(),
        };
        (receiver, dispatcher)
    }

    /// One message, sent, with its `sent` callback waiting in the outbox.
    pub(super) async fn outbox_with_one_callback(setup: &Setup) {
        outbox_with(setup, "m", 1).await;
    }

    /// `count` messages (`{prefix}1`, `{prefix}2`, ...), sent, each with its `sent` callback
    /// waiting.
    pub(super) async fn outbox_with(setup: &Setup, prefix: &str, count: usize) {
        let ids: Vec<String> = (1..=count).map(|n| format!("{prefix}{n}")).collect();
        let messages: Vec<_> = ids.iter().map(|id| message(id, "16315550001")).collect();
        setup.store.enqueue(&messages).await.unwrap();
        setup
            .store
            .record_statuses(&ids, UnixMs(T0), &|states| StatusPlan {
                updates: states
                    .iter()
                    .map(|s| StatusUpdate::to(s.id.clone(), MessageStatus::Sent, UnixMs(T0)))
                    .collect(),
                callbacks: states
                    .iter()
                    .map(|s| NewCallback {
                        shard: s.shard,
                        recipient_crc: s.recipient.crc(),
                        message_id: s.id.clone(),
                        message_seq: s.seq,
                        status: MessageStatus::Sent,
                        body: format!(r#"{{"id":"{}","status":"sent"}}"#, s.id),
                    })
                    .collect(),
                upstream_ids: Vec::new(),
            })
            .await
            .unwrap();
    }

    /// A backlog is delivered in rounds of as many POSTs as the read holds (the permits keep
    /// `max_concurrent_requests` in flight), each round saying whether more waits so the next
    /// goes at once; a round the receiver refused says nothing more waits (the gap paces it).
    #[tokio::test]
    async fn a_backlog_goes_in_full_rounds_one_after_the_other() {
        let setup = setup().await;
        let (receiver, dispatcher) = started(&setup, &[]).await;
        setup.settings.put(serde_json::json!({"webhooks": {"url": receiver.url}})).await.unwrap();
        outbox_with(&setup, "a", 2_100).await;
        let waiting = || async { dispatcher.store.backlog().await.unwrap().callbacks };
        assert_eq!(dispatcher.step().await.unwrap(), Step::Delivered { more: true });
        assert_eq!(receiver.hits(), 20, "the 1,000 read, 50 a POST: more than 6 POSTs a round");
        assert_eq!(waiting().await, 1_100);
        assert_eq!(dispatcher.step().await.unwrap(), Step::Delivered { more: true });
        assert_eq!(dispatcher.step().await.unwrap(), Step::Delivered { more: false }, "all read");
        assert_eq!((receiver.hits(), waiting().await), (42, 0));
        assert!(matches!(dispatcher.step().await.unwrap(), Step::Idle(_)));

        let (refusing, dispatcher) = started(&setup, &[503; 24]).await;
        let refusing_url = serde_json::json!({"webhooks": {"url": refusing.url}});
        setup.settings.put(refusing_url).await.unwrap();
        outbox_with(&setup, "b", 3_000).await;
        assert_eq!(dispatcher.step().await.unwrap(), Step::Delivered { more: false });
        assert_eq!(refusing.hits(), 20, "tried, refused: the next round waits for the gap");
    }

    /// A refused webhook is retried on the On-Premises schedule, linear steps of
    /// `callback_backoff_delay_ms`: nothing before its time, the POST right at it.
    #[tokio::test]
    async fn a_refused_webhook_is_retried_after_each_step_of_backoff() {
        let setup = setup().await;
        let (receiver, dispatcher) = started(&setup, &[500, 503]).await;
        let document = serde_json::json!({"webhooks": {"url": receiver.url}, "callback_backoff_delay_ms": 3000});
        setup.settings.put(document).await.unwrap();
        outbox_with_one_callback(&setup).await;
        let waiting = || async { dispatcher.store.pending_callbacks(&[0], 10).await.unwrap() };

        dispatcher.step().await.unwrap();
        assert_eq!(receiver.hits(), 1, "refused with 500");
        assert_eq!(waiting().await[0].next_attempt_at, UnixMs(T0 + 3_000));
        setup.clock.advance(Duration::from_millis(2_999));
        assert_eq!(dispatcher.step().await.unwrap(), Step::Idle(Duration::from_millis(1)));
        assert_eq!(receiver.hits(), 1, "not before its time");
        setup.clock.advance(Duration::from_millis(1));
        dispatcher.step().await.unwrap();
        assert_eq!(receiver.hits(), 2, "refused again, with 503");
        assert_eq!(waiting().await[0].next_attempt_at, UnixMs(T0 + 3_000 + 6_000), "the next step");
        setup.clock.advance(Duration::from_millis(6_000));
        dispatcher.step().await.unwrap();
        assert_eq!(receiver.hits(), 3);
        assert!(waiting().await.is_empty(), "delivered: gone from the outbox");
    }

    /// A shard whose lease lapsed (its replica frozen or cut off from the database) has
    /// nothing POSTed, even what was read while it held: the callback waits in the outbox for
    /// the shard's owner, untouched; once the lease holds again it goes.
    #[tokio::test]
    async fn nothing_is_posted_for_a_shard_whose_lease_lapsed() {
        let setup = setup().await;
        let (receiver, mut dispatcher) = started(&setup, &[]).await;
        setup.settings.put(serde_json::json!({"webhooks": {"url": receiver.url}})).await.unwrap();
        outbox_with_one_callback(&setup).await;
        let valid_until = Arc::new(std::sync::atomic::AtomicI64::new(T0));
        let fence = Fence::new(valid_until.clone(), setup.clock.clone());
        dispatcher.shards = ShardSet::of(&[0], &fence);

        dispatcher.step().await.unwrap();
        assert_eq!(receiver.hits(), 0, "the lease lapsed: not posted");
        let waiting = dispatcher.store.pending_callbacks(&[0], 10).await.unwrap();
        assert_eq!((waiting.len(), waiting[0].failures), (1, 0), "left as it was");

        valid_until.store(T0 + 1, std::sync::atomic::Ordering::Relaxed);
        dispatcher.step().await.unwrap();
        assert_eq!(receiver.hits(), 1);
        assert!(dispatcher.store.pending_callbacks(&[0], 10).await.unwrap().is_empty());
    }
}

#[cfg(test)]
mod schedule_tests {
    use std::time::Duration;

    use super::backoff_tests::{outbox_with_one_callback, started};

    /// The steps grow linearly to the cap and stay there: with a 200 ms step and a 600 ms cap,
    /// attempts come 200, 400, 600, 600 ms apart, each exactly when due.
    #[tokio::test]
    async fn the_backoff_grows_by_its_step_up_to_its_cap() {
        let setup = crate::testing::setup().await;
        let (receiver, dispatcher) = started(&setup, &[500, 500, 500, 500]).await;
        setup
            .settings
            .put(serde_json::json!({
                "webhooks": {"url": receiver.url},
                "callback_backoff_delay_ms": 200,
                "max_callback_backoff_delay_ms": 600,
            }))
            .await
            .unwrap();
        outbox_with_one_callback(&setup).await;
        dispatcher.step().await.unwrap();
        for gap in [200, 400, 600, 600] {
            setup.clock.advance(Duration::from_millis(gap - 1));
            let before = receiver.hits();
            dispatcher.step().await.unwrap();
            assert_eq!(receiver.hits(), before, "not yet, {gap} ms after the last attempt");
            setup.clock.advance(Duration::from_millis(1));
            dispatcher.step().await.unwrap();
            assert_eq!(receiver.hits(), before + 1, "{gap} ms after the last attempt");
        }
        assert!(dispatcher.store.pending_callbacks(&[0], 10).await.unwrap().is_empty());
    }
}

/// The check Meta makes of a webhook URL before it sends anything there, made by Premise of
/// the integration's URL when Cloud-form webhooks are switched on: `GET url?hub.mode=subscribe
/// &hub.verify_token=...&hub.challenge=...`, which must answer 200 with the challenge.
pub async fn verify_webhook(
    url: &str,
    verify_token: &str,
    timeout: Duration,
) -> Result<(), NotVerified> {
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(NotVerified::Client)?;
    let challenge = format!("{}", fastrand::u64(1_000_000_000..10_000_000_000));
    let response = http
        .get(url)
        .query(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", verify_token),
            ("hub.challenge", challenge.as_str()),
        ])
        .send()
        .await
        // Without the URL: its query carries the verify token, a secret never echoed.
        .map_err(|e| NotVerified::Failed(e.without_url()))?;
    let status = response.status();
    let answer = response.text().await.unwrap_or_default();
    if status.is_success() && answer.trim() == challenge {
        Ok(())
    } else {
        Err(NotVerified::NoChallenge(status))
    }
}

/// Why a webhook URL failed the check Meta would make of it.
#[derive(Debug, thiserror::Error)]
pub enum NotVerified {
    #[error("cannot make the verification request: {0}")]
    Client(reqwest::Error),
    #[error("the verification request failed: {0}")]
    Failed(reqwest::Error),
    #[error(
        "the verification request (GET with hub.mode=subscribe, hub.verify_token and \
         hub.challenge) was answered {0} without the challenge"
    )]
    NoChallenge(reqwest::StatusCode),
}
