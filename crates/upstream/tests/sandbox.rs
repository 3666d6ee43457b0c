//! The sandbox on a manual clock, with its state in a real SQLite store: delayed statuses come
//! when the test moves time, not when a test sleeps long enough.

use std::sync::Arc;
use std::time::Duration;

use premise_base::Clock;
use premise_store::{ConnectOptions, Store};
use premise_testkit::TempDir;
use premise_upstream::sandbox::{Sandbox, SandboxConfig, SandboxWorld};
use premise_upstream::{
    OutboundMessage, SendOutcome, StatusEvent, StatusReports, Unfinished, Upstream, UpstreamContext,
};
use premise_wire::{Message, MessageStatus};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const START_MS: i64 = 1_800_000_000_000;

fn config() -> SandboxConfig {
    SandboxConfig {
        ack_latency: Duration::ZERO,
        delivered_after: Duration::from_millis(100),
        read_after: Duration::from_millis(400),
        lifecycle: true,
        transient_failure_rate: 0.0,
        permanent_failure_rate: 0.0,
        journal: None,
        seed: Some(7),
        node: "test".into(),
        customer_service_window: true,
        pricing_model: premise_upstream::sandbox::PricingModel::Cbp,
        pacing: false,
        check_templates: premise_upstream::sandbox::TemplateCheck::Strict,
    }
}

struct Running {
    sandbox: Sandbox,
    world: Arc<SandboxWorld>,
    clock: Clock,
    events: mpsc::Receiver<StatusEvent>,
    store: Arc<dyn Store>,
    _stop: tokio_util::sync::DropGuard,
    _dir: TempDir,
}

/// The statuses the sandbox reports, into a channel the test reads.
#[derive(Debug)]
struct Reports(mpsc::Sender<StatusEvent>);

#[async_trait::async_trait]
impl StatusReports for Reports {
    async fn report(&self, event: StatusEvent) -> bool {
        self.0.send(event).await.is_ok()
    }

    async fn record(&self, events: Vec<StatusEvent>) -> bool {
        for event in events {
            if self.0.send(event).await.is_err() {
                return false;
            }
        }
        true
    }
}

async fn start() -> Running {
    let dir = TempDir::new("premise-sandbox");
    let store: Arc<dyn Store> =
        premise_store::connect(&dir.sqlite_url(), &ConnectOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let clock = Clock::manual(START_MS);
    let world = SandboxWorld::load(store.as_ref(), &[], clock.clone()).await.unwrap();
    let (sink, events) = mpsc::channel(64);
    let stop = CancellationToken::new();
    let statuses = Arc::new(Reports(sink));
    let context = UpstreamContext { statuses, clock: clock.clone(), stop: stop.clone() };
    let sandbox = Sandbox::start(config(), world.clone(), store.clone(), context).unwrap();
    Running { sandbox, world, clock, events, store, _stop: stop.drop_guard(), _dir: dir }
}

impl Running {
    /// A customer's message, recorded as `/v1/sandbox/inbound` records it: in the store, then
    /// in this replica's cache.
    async fn customer_wrote(&self, wa_id: &str) {
        let now = self.world.clock.now_ms();
        self.store.customer_wrote(wa_id, premise_base::UnixMs(now)).await.unwrap();
        self.world.windows.customer_wrote(wa_id, now);
    }

    /// Moves the sandbox clock as `/v1/sandbox/clock` does: in the store, then here.
    async fn advance_sandbox_clock(&self, by_ms: i64) {
        let moved = self.store.move_sandbox_clock(by_ms, false).await.unwrap();
        self.world.changed();
        self.world.clock.set_offset(moved);
    }

    /// The next status the sandbox reports, if one comes within a second (of real time: the
    /// sandbox's own tasks need a moment to run, not the clock to move).
    async fn next(&mut self) -> Option<(String, MessageStatus, i64)> {
        let event =
            tokio::time::timeout(Duration::from_secs(1), self.events.recv()).await.ok()??;
        Some((event.message_id, event.status, event.at_ms))
    }

    /// No status is waiting to be reported.
    async fn nothing(&mut self) -> bool {
        tokio::time::timeout(Duration::from_millis(50), self.events.recv()).await.is_err()
    }
}

fn outbound(id: &str, request: &serde_json::Value) -> OutboundMessage {
    OutboundMessage {
        id: id.into(),
        message: Message::parse(request).unwrap(),
        shard: 0,
        shards: 1,
        fence: premise_upstream::Fence::open(Clock::system()),
    }
}

fn text(to: &str) -> serde_json::Value {
    json!({"to": to, "type": "text", "text": {"body": "hi"}})
}

#[tokio::test]
async fn delivered_and_read_come_when_the_clock_says() {
    let mut sandbox = start().await;
    sandbox.world.customer_wrote("16505550107");
    let sent = sandbox.sandbox.send(&outbound("m1", &text("16505550107"))).await;
    assert!(matches!(sent, SendOutcome::Acknowledged { billing: Some(_), .. }), "{sent:?}");
    assert!(sandbox.nothing().await, "nothing before delivered_after");
    sandbox.clock.advance(Duration::from_millis(99));
    assert!(sandbox.nothing().await);
    sandbox.clock.advance(Duration::from_millis(1));
    assert_eq!(sandbox.next().await, Some(("m1".into(), MessageStatus::Delivered, START_MS + 100)));
    sandbox.clock.advance(Duration::from_millis(399));
    assert!(sandbox.nothing().await);
    sandbox.clock.advance(Duration::from_millis(1));
    assert_eq!(sandbox.next().await, Some(("m1".into(), MessageStatus::Read, START_MS + 500)));
}

/// A replica taking over a shard resumes statuses as far as each test number allows.
#[tokio::test]
async fn resumed_messages_keep_their_test_number_behaviour() {
    let mut sandbox = start().await;
    let unfinished = |id: &str, recipient: &str| Unfinished {
        message_id: id.into(),
        recipient: recipient.into(),
        status: MessageStatus::Sent,
        since: premise_base::UnixMs(START_MS),
    };
    sandbox
        .sandbox
        .resume(&[
            unfinished("never-read", "16505550101"),
            unfinished("offline", "16505550102"),
            unfinished("normal", "16505550107"),
        ])
        .await;
    sandbox.clock.advance(Duration::from_secs(1));
    let mut got = Vec::new();
    for _ in 0..3 {
        let (id, status, _) = sandbox.next().await.expect("a resumed status");
        got.push((id, status));
    }
    assert!(sandbox.nothing().await, "nothing for the offline number: {got:?}");
    got.sort();
    assert_eq!(
        got,
        [
            ("never-read".to_owned(), MessageStatus::Delivered),
            ("normal".to_owned(), MessageStatus::Delivered),
            ("normal".to_owned(), MessageStatus::Read),
        ]
    );
}

/// Outside the window only templates go; a customer's message opens it, for 24 hours of
/// sandbox time.
#[tokio::test]
async fn the_window_refuses_free_form_until_the_customer_writes() {
    let sandbox = start().await;
    match sandbox.sandbox.send(&outbound("m", &text("16505550107"))).await {
        SendOutcome::Permanent(error) => assert_eq!(error.code, 470),
        other => panic!("{other:?}"),
    }
    sandbox.customer_wrote("16505550107").await;
    let sent = sandbox.sandbox.send(&outbound("m", &text("16505550107"))).await;
    assert!(matches!(sent, SendOutcome::Acknowledged { billing: Some(_), .. }), "{sent:?}");
    sandbox.advance_sandbox_clock(24 * 3600 * 1000).await;
    match sandbox.sandbox.send(&outbound("m", &text("16505550107"))).await {
        SendOutcome::Permanent(error) => assert_eq!(error.code, 470, "closed after 24 h"),
        other => panic!("{other:?}"),
    }
    // A template checked at acceptance but gone from the registry since fails at the send.
    let template = json!({"to": "16505550107", "type": "template", "template": {"name": "gone", "language": {"code": "en"}}});
    match sandbox.sandbox.send(&outbound("t", &template)).await {
        SendOutcome::Permanent(error) => assert_eq!(error.code, 2001),
        other => panic!("{other:?}"),
    }
}
