//! What the workers' tests share: a real SQLite store, a manual clock, an upstream that is
//! never reached, messages to enqueue. Tests drive the workers' steps and move the clock
//! themselves; nothing here sleeps.

use std::sync::Arc;

use async_trait::async_trait;
use premise_base::Clock;
use premise_store::{ConnectOptions, NewMessage, Routed, Store};
use premise_testkit::TempDir;
use premise_upstream::{OutboundMessage, SendOutcome, Upstream};
use premise_wire::WaId;
use tokio_util::sync::CancellationToken;

use crate::{EngineConfig, Recorder, SettingsCache};

/// An arbitrary moment: 2027-01-15.
pub const T0: i64 = 1_800_000_000_000;

pub struct Setup {
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub config: Arc<EngineConfig>,
    pub settings: SettingsCache,
    pub recorder: Recorder,
    _stop: tokio_util::sync::DropGuard,
    _dir: TempDir,
}

pub async fn setup() -> Setup {
    let dir = TempDir::new("premise-engine");
    let store =
        premise_store::connect(&dir.sqlite_url(), &ConnectOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let clock = Clock::manual(T0);
    let settings = SettingsCache::new(store.clone(), clock.clone());
    let stop = CancellationToken::new();
    let (recorder, _) = Recorder::start(
        store.clone(),
        settings.clone(),
        Arc::default(),
        clock.clone(),
        stop.clone(),
    );
    Setup {
        store,
        clock,
        config: Arc::new(EngineConfig::for_node("test-node")),
        settings,
        recorder,
        _stop: stop.drop_guard(),
        _dir: dir,
    }
}

/// A text message with id `id` to `to`.
pub fn message(id: &str, to: &str) -> NewMessage {
    let to = WaId::parse("to", to).unwrap();
    NewMessage {
        id: id.to_owned(),
        recipient: Routed::new(to.as_str()),
        payload: format!(r#"{{"to":"{}","type":"text","text":{{"body":"{id}"}}}}"#, to.as_str()),
        accepted_at: premise_base::UnixMs(T0),
        callback_data: None,
        credential: None,
        idempotency: None,
    }
}

/// An upstream the test never lets the worker reach (steps only choose what to send).
#[derive(Debug)]
pub struct Unreached;

#[async_trait]
impl Upstream for Unreached {
    async fn send(&self, message: &OutboundMessage) -> SendOutcome {
        panic!("a step test sent {} to the upstream", message.id)
    }
}
