//! The sandbox: an emulated WhatsApp network. It acknowledges a send after a configurable
//! latency, reports `delivered` and later `read` after configurable delays, can fail a
//! fraction of sends transiently or for good, and can keep a journal: one JSON line per acknowledged send,
//! written before the acknowledgement, so tests can prove every message reached it (once, and
//! in order) even across a `kill -9` of the server.
//!
//! It also misbehaves on purpose: [`crate::test_numbers`] have fixed outcomes, free-form
//! messages outside the 24-hour customer-service window ([`crate::window`]) fail with 470, and
//! template messages are checked against the registry ([`crate::templates`]); the journal line
//! of an acknowledged template carries its hydrated text.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use premise_wire::{Billing, MessageStatus, StatusError};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::conversation::Conversations;
use crate::pacing::Pacer;
use crate::templates::{self, Registry, TemplateDef};
use crate::test_numbers::{self, Behaviour};
use crate::window::{CustomerWindows, SandboxClock, window_open};
use crate::{EventSink, OutboundMessage, SendOutcome, StatusEvent, Unfinished, Upstream, now_ms};

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub ack_latency: Duration,
    /// From acknowledgement to `delivered`.
    pub delivered_after: Duration,
    /// From `delivered` to `read`.
    pub read_after: Duration,
    /// Whether `delivered` and `read` follow the acknowledgement; off, messages stay `sent`.
    pub lifecycle: bool,
    /// Fraction (0 to 1) of sends that fail transiently.
    pub transient_failure_rate: f64,
    /// Fraction (0 to 1) of sends refused for good (1026 Receiver incapable).
    pub permanent_failure_rate: f64,
    /// Where to append the journal of acknowledged sends; `None` keeps none.
    pub journal: Option<PathBuf>,
    /// Seed for the random draws; `None` seeds from the OS.
    pub seed: Option<u64>,
    /// Written into each journal line, to tell replicas apart.
    pub node: String,
    /// Whether free-form messages outside the 24-hour customer-service window fail (470).
    pub customer_service_window: bool,
    /// Whether acknowledgements are paced like the real client's ([`crate::pacing`]).
    pub pacing: bool,
    /// Whether template messages are checked against the registry ([`crate::templates`]).
    pub check_templates: bool,
}

/// The sandbox's state that the HTTP front also acts on: its clock, who wrote when, the
/// template registry. Clock, windows and templates are caches of the store's: the HTTP front
/// writes through, and the server reloads them every few seconds for other replicas' changes.
#[derive(Debug, Default)]
pub struct SandboxWorld {
    pub clock: SandboxClock,
    pub windows: CustomerWindows,
    pub conversations: Conversations,
    templates: RwLock<Registry>,
    /// Counts changes made here, so a reload read before one of them does not undo it.
    changes: AtomicU64,
}

impl SandboxWorld {
    /// Marks a change made through this replica (after it is in the store).
    pub fn changed(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    /// The change count, to take before reading the store for a reload.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }

    /// Applies a reload of templates and clock offset read from the store, unless this replica
    /// changed something since `changes_before` (the next reload will carry it).
    pub fn reload(&self, changes_before: u64, templates: Vec<TemplateDef>, clock_offset_ms: i64) {
        if self.changes() != changes_before {
            return;
        }
        self.set_templates(templates);
        self.clock.set_offset(clock_offset_ms);
    }

    /// A customer message arrived from `wa_id` now (sandbox time): it opens their window.
    pub fn customer_wrote(&self, wa_id: &str) {
        self.windows.customer_wrote(wa_id, self.clock.now_ms());
    }

    /// Replaces the cached registry.
    pub fn set_templates(&self, templates: Vec<TemplateDef>) {
        let registry = templates.into_iter().map(|t| ((t.name.clone(), t.language.clone()), t));
        if let Ok(mut cached) = self.templates.write() {
            *cached = registry.collect();
        }
    }

    pub fn put_template(&self, template: TemplateDef) {
        self.changed();
        if let Ok(mut cached) = self.templates.write() {
            cached.insert((template.name.clone(), template.language.clone()), template);
        }
    }

    pub fn remove_template(&self, name: &str, language: &str) {
        self.changed();
        if let Ok(mut cached) = self.templates.write() {
            cached.remove(&(name.to_owned(), language.to_owned()));
        }
    }

    /// Checks a template message against the registry: its hydrated text, or its error.
    pub fn hydrate(&self, template: &serde_json::Value) -> Result<String, StatusError> {
        match self.templates.read() {
            Ok(registry) => templates::hydrate(&registry, template),
            Err(_) => Err(StatusError {
                code: 1000,
                title: "Generic error".to_owned(),
                details: Some("sandbox: the template registry is unavailable".to_owned()),
            }),
        }
    }
}

#[derive(Debug)]
pub struct Sandbox {
    config: SandboxConfig,
    world: Arc<SandboxWorld>,
    rng: Mutex<fastrand::Rng>,
    pacer: Pacer,
    /// Failed attempts so far of messages to a [`Behaviour::TransientFirst`] number.
    attempts: Mutex<HashMap<String, u32>>,
    later: mpsc::UnboundedSender<(Instant, StatusEvent)>,
    journal: Option<mpsc::UnboundedSender<(String, oneshot::Sender<()>)>>,
}

impl Sandbox {
    /// Starts the sandbox's background tasks; statuses after the acknowledgement go to `events`.
    pub fn start(
        config: SandboxConfig,
        world: Arc<SandboxWorld>,
        events: EventSink,
    ) -> std::io::Result<Self> {
        let (later, scheduled) = mpsc::unbounded_channel();
        tokio::spawn(report_later(scheduled, events));
        let journal = match &config.journal {
            Some(path) => {
                let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
                let (tx, rx) = mpsc::unbounded_channel();
                std::thread::spawn(move || write_journal(file, rx));
                Some(tx)
            }
            None => None,
        };
        let rng = config.seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        Ok(Self {
            config,
            world,
            rng: Mutex::new(rng),
            pacer: Pacer::default(),
            attempts: Mutex::new(HashMap::new()),
            later,
            journal,
        })
    }

    fn draw(&self) -> f64 {
        self.rng.lock().map_or(1.0, |mut rng| rng.f64())
    }
}

#[async_trait]
impl Upstream for Sandbox {
    async fn send(&self, message: &OutboundMessage) -> SendOutcome {
        let behaviour = test_numbers::lookup(&message.recipient);
        let latency = match behaviour {
            Some(Behaviour::SlowAck(latency)) => latency,
            _ => self.config.ack_latency,
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let request: serde_json::Value = serde_json::from_str(&message.payload).unwrap_or_default();
        let template = request.get("template").filter(|_| request["type"] == "template");
        if let Some(outcome) = self.misbehave(message, behaviour, template.is_some()) {
            return outcome;
        }
        // Checked at acceptance too; this catches a registry changed since.
        let checked = template.filter(|_| self.config.check_templates);
        let hydrated = match checked.map(|t| self.world.hydrate(t)).transpose() {
            Ok(hydrated) => hydrated,
            Err(error) => return SendOutcome::Permanent(error),
        };
        if self.config.pacing {
            let slot = self.pacer.reserve(message.shard, message.shards, Instant::now());
            tokio::time::sleep_until(slot).await;
        }
        let now = self.world.clock.now_ms();
        let billing = self.world.conversations.bill(
            &message.recipient,
            self.world.windows.last_inbound(&message.recipient),
            now,
            || format!("{:032x}", self.rng.lock().map_or(0, |mut rng| rng.u128(..))),
        );
        let acked_at = now_ms();
        if let Some(journal) = &self.journal {
            let mut line = serde_json::json!({
                "at_us": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64),
                "node": self.config.node,
                "id": message.id,
                "to": message.recipient,
                "message": request,
            });
            if let Some(text) = hydrated {
                line["hydrated"] = serde_json::Value::String(text);
            }
            let (done, written) = oneshot::channel();
            if journal.send((line.to_string(), done)).is_err() || written.await.is_err() {
                return SendOutcome::Transient("sandbox: journal unavailable".to_owned());
            }
        }
        self.schedule(&message.id, behaviour, MessageStatus::Sent, acked_at, billing.as_ref());
        SendOutcome::Acknowledged(billing)
    }

    async fn resume(&self, unfinished: &[Unfinished]) {
        for message in unfinished {
            let behaviour = test_numbers::lookup(&message.recipient);
            self.schedule(&message.message_id, behaviour, message.status, message.since_ms, None);
        }
    }
}

impl Sandbox {
    /// What goes wrong with this send, if anything: a test number's failure, a transient
    /// failure, the customer-service window, or a random draw.
    fn misbehave(
        &self,
        message: &OutboundMessage,
        behaviour: Option<Behaviour>,
        is_template: bool,
    ) -> Option<SendOutcome> {
        match behaviour {
            Some(Behaviour::Fails(code)) => return Some(failure(code)),
            Some(Behaviour::Invalid) => return Some(failure(1013)),
            Some(Behaviour::TransientFirst(n)) => {
                let mut attempts = self.attempts.lock().ok()?;
                let done = attempts.entry(message.id.clone()).or_insert(0);
                if *done < n {
                    *done += 1;
                    return Some(SendOutcome::Transient(format!(
                        "sandbox: test number {}, transient failure {done} of {n}",
                        message.recipient
                    )));
                }
                attempts.remove(&message.id);
            }
            _ => {}
        }
        if self.config.customer_service_window
            && !is_template
            && !window_open(
                self.world.windows.last_inbound(&message.recipient),
                self.world.clock.now_ms(),
            )
        {
            return Some(failure(470));
        }
        if behaviour.is_some() {
            return None;
        }
        if self.config.transient_failure_rate > 0.0
            && self.draw() < self.config.transient_failure_rate
        {
            return Some(SendOutcome::Transient("sandbox: simulated transient failure".to_owned()));
        }
        if self.config.permanent_failure_rate > 0.0
            && self.draw() < self.config.permanent_failure_rate
        {
            return Some(failure(1026));
        }
        None
    }

    /// Schedules the statuses that follow `status`, reached at `since_ms`: `delivered` after
    /// `delivered_after`, `read` after a further `read_after` (at once if already overdue), as
    /// far as the recipient's test-number behaviour (if any) lets them go.
    fn schedule(
        &self,
        id: &str,
        behaviour: Option<Behaviour>,
        status: MessageStatus,
        since_ms: i64,
        billing: Option<&Billing>,
    ) {
        let (deliver, read) = match behaviour {
            Some(Behaviour::DeliveredAndRead) => (true, true),
            Some(Behaviour::DeliveredNeverRead) => (true, false),
            Some(Behaviour::NeverDelivered) => (false, false),
            _ => (self.config.lifecycle, self.config.lifecycle),
        };
        if !deliver {
            return;
        }
        let (now, now_ms) = (Instant::now(), now_ms());
        let at =
            |due_ms: i64| now + Duration::from_millis(u64::try_from(due_ms - now_ms).unwrap_or(0));
        let event = |status, due_ms| {
            (
                at(due_ms),
                StatusEvent {
                    message_id: id.to_owned(),
                    status,
                    at_ms: due_ms.max(now_ms),
                    errors: Vec::new(),
                    billing: if status == MessageStatus::Delivered {
                        billing.cloned()
                    } else {
                        None
                    },
                },
            )
        };
        let delivered_ms = match status {
            MessageStatus::Sent => {
                let due = since_ms + self.config.delivered_after.as_millis() as i64;
                let _ = self.later.send(event(MessageStatus::Delivered, due));
                due
            }
            MessageStatus::Delivered => since_ms,
            _ => return,
        };
        if !read {
            return;
        }
        let _ = self.later.send(event(
            MessageStatus::Read,
            delivered_ms + self.config.read_after.as_millis() as i64,
        ));
    }
}

/// A permanent failure with an On-Premises async error code (`onprem-api.md` section 10.2).
fn failure(code: u32) -> SendOutcome {
    let (title, details) = match code {
        470 => (
            "Re-engagement message",
            "Message failed to send because more than 24 hours have passed since the customer last replied to this number",
        ),
        471 => (
            "Spam rate limit hit",
            "Message failed to send because there are restrictions on how many messages can be sent from this phone number",
        ),
        1013 => ("User is not valid", "The recipient is not a WhatsApp user"),
        _ => ("Receiver incapable", "The receiver is incapable of receiving this message"),
    };
    SendOutcome::Permanent(StatusError {
        code,
        title: title.to_owned(),
        details: Some(details.to_owned()),
    })
}

/// Emits scheduled statuses when they fall due, in due order (ties in scheduling order).
async fn report_later(
    mut scheduled: mpsc::UnboundedReceiver<(Instant, StatusEvent)>,
    events: EventSink,
) {
    let mut due: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut waiting: HashMap<u64, StatusEvent> = HashMap::new();
    let mut counter = 0u64;
    loop {
        let next_due = due.peek().map(|Reverse((at, _))| *at);
        tokio::select! {
            item = scheduled.recv() => match item {
                Some((at, event)) => {
                    counter += 1;
                    due.push(Reverse((at, counter)));
                    waiting.insert(counter, event);
                }
                None if due.is_empty() => return,
                None => {}
            },
            () = async { tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)).await }, if next_due.is_some() => {
                let now = Instant::now();
                while let Some(&Reverse((at, key))) = due.peek() {
                    if at > now {
                        break;
                    }
                    due.pop();
                    let Some(event) = waiting.remove(&key) else { continue };
                    if events.send(event).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Appends journal lines in batches; each waiting send is released once its line is in the
/// file (the kernel's page cache survives the process being killed).
fn write_journal(
    mut file: std::fs::File,
    mut lines: mpsc::UnboundedReceiver<(String, oneshot::Sender<()>)>,
) {
    while let Some(first) = lines.blocking_recv() {
        let mut batch = vec![first];
        while let Ok(more) = lines.try_recv() {
            batch.push(more);
        }
        let mut text = String::new();
        for (line, _) in &batch {
            text.push_str(line);
            text.push('\n');
        }
        if let Err(e) = file.write_all(text.as_bytes()) {
            tracing::error!(error = %e, "sandbox journal write failed");
            continue;
        }
        for (_, done) in batch {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SandboxConfig {
        SandboxConfig {
            ack_latency: Duration::ZERO,
            delivered_after: Duration::ZERO,
            read_after: Duration::ZERO,
            lifecycle: true,
            transient_failure_rate: 0.0,
            permanent_failure_rate: 0.0,
            journal: None,
            seed: Some(7),
            node: "test".into(),
            customer_service_window: true,
            pacing: false,
            check_templates: true,
        }
    }

    /// A replica taking over a shard resumes statuses as far as each test number allows.
    #[tokio::test]
    async fn resumed_messages_keep_their_test_number_behaviour() {
        let (events, mut received) = mpsc::channel(16);
        let sandbox = Sandbox::start(config(), Arc::default(), events).unwrap();
        let unfinished = |id: &str, recipient: &str| Unfinished {
            message_id: id.into(),
            recipient: recipient.into(),
            status: MessageStatus::Sent,
            since_ms: now_ms(),
        };
        sandbox
            .resume(&[
                unfinished("never-read", "16505550101"),
                unfinished("offline", "16505550102"),
                unfinished("normal", "16505550107"),
            ])
            .await;
        let mut got = Vec::new();
        while let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_millis(200), received.recv()).await
        {
            got.push((event.message_id, event.status));
        }
        got.sort_by_key(|(id, status)| (id.clone(), *status));
        assert_eq!(
            got,
            [
                ("never-read".to_owned(), MessageStatus::Delivered),
                ("normal".to_owned(), MessageStatus::Delivered),
                ("normal".to_owned(), MessageStatus::Read),
            ]
        );
    }

    /// Outside the window only templates go; a customer's message opens it.
    #[tokio::test]
    async fn the_window_refuses_free_form_until_the_customer_writes() {
        let (events, _received) = mpsc::channel(16);
        let world = Arc::new(SandboxWorld::default());
        let sandbox = Sandbox::start(config(), world.clone(), events).unwrap();
        let message = |payload: &str| OutboundMessage {
            id: "m".into(),
            recipient: "16505550107".into(),
            payload: payload.into(),
            shard: 0,
            shards: 1,
        };
        let text = r#"{"to":"16505550107","type":"text","text":{"body":"hi"}}"#;
        match sandbox.send(&message(text)).await {
            SendOutcome::Permanent(error) => assert_eq!(error.code, 470),
            other => panic!("{other:?}"),
        }
        world.customer_wrote("16505550107");
        assert!(matches!(sandbox.send(&message(text)).await, SendOutcome::Acknowledged(Some(_))));
        // A template checked at acceptance but gone from the registry since fails at the send.
        let template = r#"{"to":"16505550107","type":"template","template":{"name":"gone","language":{"code":"en"}}}"#;
        match sandbox.send(&message(template)).await {
            SendOutcome::Permanent(error) => assert_eq!(error.code, 2001),
            other => panic!("{other:?}"),
        }
    }
}
