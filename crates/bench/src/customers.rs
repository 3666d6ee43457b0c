//! Customers writing back through the Cloud API fake: one signed `messages` webhook per
//! customer message, at a fixed rate, from the scenario's recipients, as Meta posts them.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use premise_testkit::cloud::webhooks::{Sender, messages_payload};
use serde::Serialize;
use serde_json::json;

use crate::load::recipient_number;

/// What the customers wrote and what reached the integration.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CustomerFigures {
    /// Messages posted and answered 200.
    pub posted: u64,
    /// Posts answered otherwise (not posted again: the figure shows them).
    pub refused: u64,
    /// Distinct customer messages called back to the integration.
    pub called_back: u64,
}

/// Posts `per_second` customer messages through `sender` for `duration`; what was posted and
/// refused (`called_back` is the receiver's to fill).
pub async fn write(
    sender: &Sender,
    per_second: u32,
    duration: Duration,
    recipients: usize,
) -> CustomerFigures {
    let mut figures = CustomerFigures::default();
    if per_second == 0 {
        return figures;
    }
    let start = tokio::time::Instant::now();
    let deadline = Instant::now() + duration;
    let run = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    for n in 0u64.. {
        let due = start + Duration::from_secs_f64(n as f64 / f64::from(per_second));
        if due.into_std() >= deadline {
            break;
        }
        tokio::time::sleep_until(due).await;
        // Spread over the recipients so they are not the ones messages are being sent to at
        // the same moment.
        let wa_id = recipient_number(((n * 7919) % recipients.max(1) as u64) as u32);
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let message = json!({
            "from": wa_id,
            "id": format!("wamid.customer-{run}-{n}"),
            "timestamp": timestamp.to_string(),
            "type": "text",
            "text": { "body": "Thanks! When will it arrive?" },
        });
        match sender.post(&messages_payload("Bench Customer", &wa_id, &[message])).await {
            200 => figures.posted += 1,
            _ => figures.refused += 1,
        }
    }
    figures
}
