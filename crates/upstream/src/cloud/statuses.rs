//! The statuses of the Cloud API's webhooks, into the engine like any upstream's: each `wamid`
//! mapped to the message Premise sent (kept with its acknowledgement), then recorded through
//! [`StatusReports`], the one way in.

use std::collections::HashMap;
use std::time::Duration;

use premise_store::{Store, StoreError};

use super::webhook::CloudStatus;
use crate::{Clock, StatusEvent, StatusReports};

/// A status of an id not (yet) known is waited for this long when it is recent: Cloud may send
/// `sent` before the acknowledgement that carries the id has been recorded.
const UNKNOWN_GRACE: Duration = Duration::from_secs(3);
const UNKNOWN_POLL: Duration = Duration::from_millis(100);
/// A status older than this is not waited for (Meta redelivering an old webhook).
const RECENT: Duration = Duration::from_secs(60);

/// What became of a webhook's statuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reported {
    /// Recorded (committed).
    pub recorded: u64,
    /// Of messages Premise does not know (sent by something else on the number): ignored.
    pub unknown: u64,
}

/// Why a webhook's statuses were not recorded: its sender should deliver it again later.
#[derive(Debug, thiserror::Error)]
pub enum NotRecorded {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the status recorder is stopping")]
    Stopping,
}

/// Records `statuses` (of one webhook) through `reports`, once each `wamid` is mapped.
pub async fn report(
    store: &dyn Store,
    clock: &Clock,
    reports: &dyn StatusReports,
    statuses: &[CloudStatus],
) -> Result<Reported, NotRecorded> {
    if statuses.is_empty() {
        return Ok(Reported::default());
    }
    let known = message_ids(store, clock, statuses).await?;
    let mut unknown = 0;
    let mut events = Vec::with_capacity(statuses.len());
    for status in statuses {
        let Some(message_id) = known.get(&status.wamid) else {
            unknown += 1;
            tracing::info!(wamid = %status.wamid, status = status.status.as_str(), "a status of a message Premise does not know; ignored");
            continue;
        };
        events.push(StatusEvent {
            errors: status.errors.clone(),
            billing: status.billing.clone(),
            customer: status.passed.clone(),
            ..StatusEvent::new(message_id.clone(), status.status, status.at_ms)
        });
    }
    // A webhook's statuses in lifecycle order (stable, so one message's repeats keep theirs):
    // a `read` listed before its `delivered` would otherwise imply `delivered` without the
    // conversation and pricing the real one carries.
    events.sort_by_key(|e| e.status);
    let recorded = events.len() as u64;
    if !reports.record(events).await {
        return Err(NotRecorded::Stopping);
    }
    Ok(Reported { recorded, unknown })
}

/// Premise's message id of each `wamid` the statuses name, as far as known: a recent status of
/// an id not known yet is waited for, up to [`UNKNOWN_GRACE`].
async fn message_ids(
    store: &dyn Store,
    clock: &Clock,
    statuses: &[CloudStatus],
) -> Result<HashMap<String, String>, StoreError> {
    let mut wamids: Vec<String> = statuses.iter().map(|s| s.wamid.clone()).collect();
    wamids.sort_unstable();
    wamids.dedup();
    let mut known = HashMap::new();
    look_up(store, &wamids, &mut known).await?;
    let now = clock.now();
    let (recent_after, deadline) = (now.minus(RECENT).ms(), now.plus(UNKNOWN_GRACE));
    let waits_for = |known: &HashMap<String, String>| {
        statuses.iter().any(|s| !known.contains_key(&s.wamid) && s.at_ms >= recent_after)
    };
    while waits_for(&known) && clock.now() < deadline {
        clock.sleep(UNKNOWN_POLL).await;
        let missing: Vec<String> =
            wamids.iter().filter(|w| !known.contains_key(*w)).cloned().collect();
        look_up(store, &missing, &mut known).await?;
    }
    Ok(known)
}

async fn look_up(
    store: &dyn Store,
    wamids: &[String],
    known: &mut HashMap<String, String>,
) -> Result<(), StoreError> {
    let found = store.messages_by_upstream_id(wamids).await?;
    known.extend(found.into_iter().map(|u| (u.upstream_id, u.message_id)));
    Ok(())
}
