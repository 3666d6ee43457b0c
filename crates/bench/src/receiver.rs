//! The integration's webhook receiver: records when each status callback of each message
//! arrived, and how often, and which customers' messages were called back.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;

/// What arrived for one message: the first arrival of `sent`, `delivered`, `read` and `failed`,
/// and how many callbacks came in all.
#[derive(Debug, Clone, Copy, Default)]
pub struct Arrivals {
    pub sent: Option<Instant>,
    pub delivered: Option<Instant>,
    pub read: Option<Instant>,
    pub failed: Option<Instant>,
    /// Callbacks beyond the first of the same status.
    pub duplicates: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Receiver {
    inner: Arc<Mutex<Recorded>>,
}

#[derive(Debug, Default)]
struct Recorded {
    by_id: HashMap<String, Arrivals>,
    /// Messages whose callback that ends the journey arrived.
    finished: usize,
    /// Customers' messages called back, by id.
    inbound: HashSet<String>,
}

impl Receiver {
    /// Listens on a free loopback port and returns the URL to configure as `webhooks.url`.
    /// `final_status` is the status whose arrival ends a message's journey.
    pub async fn start(final_status: &'static str) -> anyhow::Result<(Self, String)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/webhook", listener.local_addr()?);
        let receiver = Self::default();
        let app = Router::new()
            .route("/webhook", post(record))
            .with_state((receiver.clone(), final_status));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok((receiver, url))
    }

    /// Messages whose journey has ended so far.
    pub fn finished(&self) -> usize {
        self.inner.lock().map_or(0, |r| r.finished)
    }

    /// Distinct customers' messages called back so far.
    pub fn inbound(&self) -> usize {
        self.inner.lock().map_or(0, |r| r.inbound.len())
    }

    pub fn arrivals(&self, id: &str) -> Option<Arrivals> {
        self.inner.lock().ok()?.by_id.get(id).copied()
    }

    /// When each message's `delivered` callback first arrived, in no order.
    pub fn delivered_at(&self) -> Vec<Instant> {
        self.inner
            .lock()
            .map_or_else(|_| Vec::new(), |r| r.by_id.values().filter_map(|a| a.delivered).collect())
    }

    pub fn duplicates(&self) -> u64 {
        self.inner.lock().map_or(0, |r| r.by_id.values().map(|a| u64::from(a.duplicates)).sum())
    }
}

async fn record(
    State((receiver, final_status)): State<(Receiver, &'static str)>,
    body: axum::body::Bytes,
) -> StatusCode {
    let now = Instant::now();
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let Ok(mut recorded) = receiver.inner.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    for message in body["messages"].as_array().into_iter().flatten() {
        if let Some(id) = message["id"].as_str() {
            recorded.inbound.insert(id.to_owned());
        }
    }
    for status in body["statuses"].as_array().into_iter().flatten() {
        let (Some(id), Some(kind)) = (status["id"].as_str(), status["status"].as_str()) else {
            continue;
        };
        let arrivals = recorded.by_id.entry(id.to_owned()).or_default();
        let slot = match kind {
            "sent" => &mut arrivals.sent,
            "delivered" => &mut arrivals.delivered,
            "read" => &mut arrivals.read,
            "failed" => &mut arrivals.failed,
            _ => continue,
        };
        if slot.is_some() {
            arrivals.duplicates += 1;
            continue;
        }
        *slot = Some(now);
        if kind == final_status || kind == "failed" {
            recorded.finished += 1;
        }
    }
    StatusCode::OK
}
