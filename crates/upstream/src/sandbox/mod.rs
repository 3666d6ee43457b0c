//! The sandbox: an emulated WhatsApp network. It acknowledges a send after a configurable
//! latency, reports `delivered` and later `read` after configurable delays ([`later`]), can
//! fail a fraction of sends transiently or for good, and can keep a [`journal`] of what it
//! acknowledged.
//!
//! It also misbehaves on purpose, each rule pure logic in a module of its own:
//! [`test_numbers`] have fixed outcomes (and answer `/v1/contacts`), free-form messages outside
//! the 24-hour customer-service [`window`] fail with 470, template messages are checked against
//! the [`templates`] registry, sends are billed in [`conversation`]s, and acknowledgements can be
//! paced like the real client's ([`pacing`]). Its state is shared by every replica through the
//! store ([`world`]).

pub mod conversation;
mod journal;
mod later;
pub mod pacing;
pub mod templates;
pub mod test_numbers;
pub mod users;
pub mod window;
mod world;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use premise_base::millis;
use premise_store::Store;
use premise_wire::contacts::PhoneNumber;
use premise_wire::messages::template::Template;
use premise_wire::{Billing, Content, MessageStatus, StatusCustomer, StatusError};

use self::journal::Journal;
use self::later::Later;
use self::pacing::Pacer;
pub use self::templates::TemplateCheck;
use self::test_numbers::Behaviour;
use self::window::window_open;
pub use self::world::SandboxWorld;
use crate::{
    Clock, OutboundMessage, SendOutcome, StatusEvent, Unfinished, Upstream, UpstreamContext,
};

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
    /// How statuses price messages.
    pub pricing_model: PricingModel,
    /// Whether acknowledgements are paced like the real client's ([`pacing`]).
    pub pacing: bool,
    /// How template messages are checked against the registry ([`templates`]).
    pub check_templates: TemplateCheck,
}

/// How the sandbox prices messages in their statuses (`sandbox.pricing_model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
pub enum PricingModel {
    /// Per-message pricing, WhatsApp's since July 2025.
    #[default]
    #[serde(rename = "PMP")]
    Pmp,
    /// Conversation-based pricing, WhatsApp's before.
    #[serde(rename = "CBP")]
    Cbp,
}

#[derive(Debug)]
pub struct Sandbox {
    config: SandboxConfig,
    world: Arc<SandboxWorld>,
    clock: Clock,
    rng: Mutex<fastrand::Rng>,
    pacer: Pacer,
    /// Failed attempts so far of messages to a [`Behaviour::TransientFirst`] number.
    attempts: Mutex<HashMap<String, u32>>,
    later: Later,
    journal: Option<Journal>,
    /// Where conversations are shared with the other replicas.
    store: Arc<dyn Store>,
}

impl Sandbox {
    /// Starts the sandbox's background work (statuses that come later, the journal, keeping
    /// `world` in step with `store`), all stopping with the context's token.
    pub fn start(
        config: SandboxConfig,
        world: Arc<SandboxWorld>,
        store: Arc<dyn Store>,
        context: UpstreamContext,
    ) -> std::io::Result<Self> {
        let UpstreamContext { statuses, clock, stop } = context;
        let (later, _) = Later::start(statuses, clock.clone(), stop.clone());
        let journal = config.journal.as_deref().map(Journal::open).transpose()?;
        world.keep_in_step(store.clone(), clock.clone(), stop);
        let rng = config.seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        Ok(Self {
            config,
            world,
            clock,
            rng: Mutex::new(rng),
            pacer: Pacer::default(),
            attempts: Mutex::new(HashMap::new()),
            later,
            journal,
            store,
        })
    }

    fn draw(&self) -> f64 {
        self.rng.lock().map_or(1.0, |mut rng| rng.f64())
    }
}

#[async_trait]
impl Upstream for Sandbox {
    async fn send(&self, message: &OutboundMessage) -> SendOutcome {
        let recipient = message.recipient();
        let behaviour = test_numbers::lookup(recipient);
        let latency = match behaviour {
            Some(Behaviour::SlowAck(latency)) => latency,
            _ => self.config.ack_latency,
        };
        if !latency.is_zero() {
            self.clock.sleep(latency).await;
        }
        let template = match &message.message.content {
            Content::Template { template } => Some(template),
            _ => None,
        };
        // A closed window judged on this replica's cache is judged again on the store's state:
        // another replica may have just recorded the customer's message.
        if self.window_closed(recipient, template.is_some()) {
            self.refresh().await;
        }
        if let Some(outcome) = self.misbehave(message, behaviour, template.is_some()) {
            return outcome;
        }
        // Checked at acceptance too; this catches a registry changed since.
        let hydrated = match template {
            Some(template) => match self.judge_template(template).await {
                Ok(hydrated) => hydrated,
                Err(Judged::Refused(error)) => return SendOutcome::Permanent(error),
                Err(Judged::Unavailable(why)) => return SendOutcome::transient(why),
            },
            None => None,
        };
        if self.config.pacing {
            let slot_us =
                self.pacer.reserve(message.shard, message.shards, self.clock.now_ms() * 1000);
            self.clock.sleep_until_ms((slot_us + 999) / 1000).await;
        }
        // After every wait (the acknowledgement's latency, pacing), just before the message
        // reaches the emulated network.
        if let Some(refused) = message.fence.refuse() {
            return refused;
        }
        let now = self.world.clock.now_ms();
        let last_inbound = self.world.windows.last_inbound(recipient);
        let billing = match self.config.pricing_model {
            PricingModel::Pmp => {
                let category = template.map(|t| self.world.template_category(t.name()));
                Some(conversation::per_message(category.as_deref(), window_open(last_inbound, now)))
            }
            PricingModel::Cbp => {
                self.world
                    .conversations
                    .bill(self.store.as_ref(), recipient, last_inbound, now, || {
                        format!("{:032x}", self.rng.lock().map_or(0, |mut rng| rng.u128(..)))
                    })
                    .await
            }
        };
        let acked_at = self.clock.now_ms();
        if let Some(journal) = &self.journal {
            let mut line = serde_json::json!({
                "at_us": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64),
                "node": self.config.node,
                "id": message.id,
                "to": recipient,
                "message": message.message,
            });
            if let Some(text) = hydrated {
                line["hydrated"] = serde_json::Value::String(text);
            }
            if !journal.append(line.to_string()).await {
                return SendOutcome::transient("sandbox: journal unavailable");
            }
        }
        // Who the customer is, once for the message: every status of it says the same.
        let customer = users::status_customer(recipient);
        self.schedule(
            &message.id,
            &customer,
            behaviour,
            MessageStatus::Sent,
            acked_at,
            billing.as_ref(),
        );
        SendOutcome::Acknowledged { upstream_id: None, billing, customer: Box::new(customer) }
    }

    fn resumes(&self) -> bool {
        true
    }

    async fn resume(&self, unfinished: &[Unfinished]) {
        for message in unfinished {
            let behaviour = test_numbers::lookup(&message.recipient);
            self.schedule(
                &message.message_id,
                &users::status_customer(&message.recipient),
                behaviour,
                message.status,
                message.since.ms(),
                None,
            );
        }
    }

    /// A template must fit the registry's definition in its language; unknown ones are
    /// learned (`learn`) or refused (`strict`).
    async fn check_template(&self, template: &Template) -> Result<(), StatusError> {
        match self.judge_template(template).await {
            Ok(_) => Ok(()),
            Err(Judged::Refused(error)) => Err(error),
            Err(Judged::Unavailable(why)) => Err(StatusError {
                code: 1016,
                title: "System overloaded".to_owned(),
                details: Some(why),
            }),
        }
    }

    /// Everyone is on WhatsApp but the invalid test number.
    async fn lookup_contact(&self, number: &PhoneNumber) -> Option<String> {
        test_numbers::is_valid(number.as_str()).then(|| number.as_str().to_owned())
    }
}

/// Why a template message cannot go (now).
enum Judged {
    /// WhatsApp would refuse it: the message fails with this error.
    Refused(StatusError),
    /// The store could not record a learned template: try again later.
    Unavailable(String),
}

impl Sandbox {
    /// Reads again the shared state this replica caches (templates, clock, customer windows),
    /// which another replica may have just changed, before refusing on it.
    async fn refresh(&self) {
        if let Err(e) = self.world.reload(self.store.as_ref()).await {
            tracing::debug!(error = format!("{e:#}"), "cannot refresh the sandbox's state");
        }
    }

    /// A template message by `sandbox.check_templates`: its hydrated text (`None` with `off`),
    /// or why it cannot go. An unknown template is looked for again in the store (another
    /// replica may have just registered or learned it), then learned in `learn` mode: stored
    /// for every replica, the first replica's definition winning if two learn it at once.
    async fn judge_template(&self, template: &Template) -> Result<Option<String>, Judged> {
        let mode = self.config.check_templates;
        let check_namespace = mode == TemplateCheck::Strict;
        if mode == TemplateCheck::Off {
            return Ok(None);
        }
        let judge = || self.world.hydrate(template, check_namespace);
        let unknown = |e: &StatusError| e.code == 2001;
        match judge() {
            Err(e) if unknown(&e) => self.refresh().await,
            judged => return judged.map(Some).map_err(Judged::Refused),
        }
        match judge() {
            Err(e) if unknown(&e) && mode == TemplateCheck::Learn => {}
            judged => return judged.map(Some).map_err(Judged::Refused),
        }
        let learned = templates::learn(template).map_err(Judged::Refused)?;
        let definition = serde_json::to_string(&learned).expect("a definition serialises");
        // A demo of the same name gives way to the integration's own template.
        let replace = self.world.is_demo(&learned.name, &learned.language);
        let stored = self
            .store
            .put_sandbox_template(&learned.name, &learned.language, &definition, replace)
            .await
            .map_err(|e| Judged::Unavailable(format!("cannot record the learned template: {e}")))?;
        if stored {
            tracing::info!(name = %learned.name, language = %learned.language, "sandbox: learned a template from its first use");
            self.world.put_template(learned);
        } else {
            self.refresh().await;
        }
        judge().map(Some).map_err(Judged::Refused)
    }

    /// Whether the customer-service window (when enforced) refuses a free-form message to
    /// `recipient` now.
    fn window_closed(&self, recipient: &str, is_template: bool) -> bool {
        self.config.customer_service_window
            && !is_template
            && !window_open(self.world.windows.last_inbound(recipient), self.world.clock.now_ms())
    }

    /// What goes wrong with this send, if anything: a test number's failure, a transient
    /// failure, the customer-service window, or a random draw.
    fn misbehave(
        &self,
        message: &OutboundMessage,
        behaviour: Option<Behaviour>,
        is_template: bool,
    ) -> Option<SendOutcome> {
        let recipient = message.recipient();
        match behaviour {
            Some(Behaviour::Fails(code)) => return Some(failure(code)),
            Some(Behaviour::Invalid) => return Some(failure(1013)),
            Some(Behaviour::TransientFirst(n)) => {
                let mut attempts = self.attempts.lock().ok()?;
                let done = attempts.entry(message.id.clone()).or_insert(0);
                if *done < n {
                    *done += 1;
                    return Some(SendOutcome::transient(format!(
                        "sandbox: test number {recipient}, transient failure {done} of {n}"
                    )));
                }
                attempts.remove(&message.id);
            }
            _ => {}
        }
        // A number whose outcome is fixed has it whatever the window (like a test card); the
        // others behave as normal numbers, window included.
        let fixed = matches!(
            behaviour,
            Some(
                Behaviour::DeliveredAndRead
                    | Behaviour::DeliveredNeverRead
                    | Behaviour::NeverDelivered
            )
        );
        if !fixed && self.window_closed(recipient, is_template) {
            return Some(failure(470));
        }
        if behaviour.is_some() {
            return None;
        }
        if self.config.transient_failure_rate > 0.0
            && self.draw() < self.config.transient_failure_rate
        {
            return Some(SendOutcome::transient("sandbox: simulated transient failure"));
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
        customer: &StatusCustomer,
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
        let now_ms = self.clock.now_ms();
        let event = |status, due_ms: i64| StatusEvent {
            billing: if status == MessageStatus::Delivered { billing.cloned() } else { None },
            customer: customer.clone(),
            ..StatusEvent::new(id, status, due_ms.max(now_ms))
        };
        let delivered_ms = match status {
            MessageStatus::Sent => {
                let due = since_ms + millis(self.config.delivered_after);
                self.later.schedule(due, event(MessageStatus::Delivered, due));
                due
            }
            MessageStatus::Delivered => since_ms,
            _ => return,
        };
        if read {
            let due = delivered_ms + millis(self.config.read_after);
            self.later.schedule(due, event(MessageStatus::Read, due));
        }
    }
}

/// A permanent failure with an On-Premises async error code (`docs/onprem-api.md` section 10.2).
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
