//! Recording what a Cloud API webhook carries, durably, before it is answered.
//!
//! - A status names Cloud's id for the message (`wamid`); the message it belongs to is found in
//!   the store, whichever replica sent it, and the status is recorded like the sandbox's: in
//!   lifecycle order (an older status than the one recorded is dropped), its callback queued on
//!   the message's shard. A status of an id Premise does not know is counted and ignored.
//! - A customer's message goes into the inbox with its webhook (idempotent by Cloud's id), its
//!   media downloaded from Cloud into Premise's media store first, under an id derived from
//!   Cloud's, so a redelivered webhook finds it already there.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::StatusCode;
use premise_engine::Metrics;
use premise_store::NewInbound;
use premise_upstream::StatusEvent;
use premise_upstream::cloud::webhook::{
    CloudMedia, CloudStatus, CustomerMessage, Notification, Unmapped,
};
use premise_upstream::cloud::{CloudClient, CloudError};
use premise_wire::media::MediaType;
use premise_wire::{ErrorCode, WaId};
use sha2::{Digest, Sha256};

use super::super::media::Upload;
use super::super::{ApiError, AppState};

/// A status of an id not (yet) known is waited for this long when it is recent: Cloud may send
/// `sent` before the acknowledgement that carries the id has been recorded.
const UNKNOWN_GRACE: Duration = Duration::from_secs(3);
const UNKNOWN_POLL: Duration = Duration::from_millis(100);
/// A status older than this is not waited for (Meta redelivering an old webhook).
const RECENT: Duration = Duration::from_secs(60);

/// Records what the webhook carries; the parts it could read but not map (a sender that is not
/// a WhatsApp id, as a username customer's business-scoped id), with the reason.
pub(super) async fn record(
    state: &AppState,
    cloud: &CloudClient,
    notification: &Notification,
) -> Result<Vec<Unmapped>, ApiError> {
    statuses(state, &notification.statuses).await?;
    let mut unmapped = Vec::new();
    for message in &notification.messages {
        if let Some(part) = customer_message(state, cloud, message).await? {
            unmapped.push(part);
        }
    }
    Ok(unmapped)
}

async fn statuses(state: &AppState, statuses: &[CloudStatus]) -> Result<(), ApiError> {
    if statuses.is_empty() {
        return Ok(());
    }
    let mut wamids: Vec<String> = statuses.iter().map(|s| s.wamid.clone()).collect();
    wamids.sort_unstable();
    wamids.dedup();
    let mut known: HashMap<String, String> =
        state.store.messages_by_upstream_id(&wamids).await?.into_iter().collect();
    let recent_after = state.clock.now_ms() - millis(RECENT);
    let waits_for = |known: &HashMap<String, String>| {
        statuses.iter().any(|s| !known.contains_key(&s.wamid) && s.at_ms >= recent_after)
    };
    let deadline = state.clock.now_ms() + millis(UNKNOWN_GRACE);
    while waits_for(&known) && state.clock.now_ms() < deadline {
        state.clock.sleep(UNKNOWN_POLL).await;
        let missing: Vec<String> =
            wamids.iter().filter(|w| !known.contains_key(*w)).cloned().collect();
        known.extend(state.store.messages_by_upstream_id(&missing).await?);
    }
    let mut events = Vec::with_capacity(statuses.len());
    for status in statuses {
        let Some(message_id) = known.get(&status.wamid) else {
            Metrics::add(&state.metrics.upstream_statuses_unknown, 1);
            tracing::info!(wamid = %status.wamid, status = status.status.as_str(), "a status of a message Premise does not know; ignored");
            continue;
        };
        events.push(StatusEvent {
            errors: status.errors.clone(),
            billing: status.billing.clone(),
            ..StatusEvent::new(message_id.clone(), status.status, status.at_ms)
        });
    }
    // A webhook's statuses in lifecycle order (stable, so one message's repeats keep theirs):
    // a `read` listed before its `delivered` would otherwise imply `delivered` without the
    // conversation and pricing the real one carries.
    events.sort_by_key(|e| e.status);
    let count = events.len() as u64;
    if !state.recorder.record_all(events).await {
        return Err(not_now("the status recorder is stopping"));
    }
    Metrics::add(&state.metrics.upstream_statuses, count);
    Ok(())
}

async fn customer_message(
    state: &AppState,
    cloud: &CloudClient,
    message: &CustomerMessage,
) -> Result<Option<Unmapped>, ApiError> {
    if state.store.inbound(&message.id).await?.is_some() {
        return Ok(None); // Delivered again: recorded the first time.
    }
    let Ok(from) = WaId::parse("from", &message.from) else {
        tracing::warn!(id = %message.id, from = %message.from, "a customer's message from a sender that is not a WhatsApp id; kept as not mapped");
        let part = serde_json::Value::Object(message.message.clone());
        let why = format!("the sender '{}' is not a WhatsApp id (a phone number)", message.from);
        return Ok(Some(Unmapped::new(&part, why)));
    };
    let mut media_failure = None;
    let media_id = match message.media() {
        None => None,
        Some(media) => match download(state, cloud, &media).await? {
            Ok(id) => Some(id),
            Err(why) => {
                media_failure = Some(why);
                None
            }
        },
    };
    let context_id = match message.context_id() {
        Some(wamid) => {
            let found = state.store.messages_by_upstream_id(&[wamid.to_owned()]).await?;
            found.into_iter().next().map(|(_, id)| id)
        }
        None => None,
    };
    let (mut payload, mut webhook) =
        message.on_premises(media_id.as_deref(), context_id.as_deref());
    if let Some(why) = media_failure {
        // Cloud refused the media for good (gone, too large): the message still arrives, with
        // the On-Premises media download error instead of a media id.
        let error =
            serde_json::json!([{ "code": 400, "title": "Media download error", "details": why }]);
        payload["errors"] = error.clone();
        webhook["messages"][0]["errors"] = error;
    }
    let inbound = NewInbound {
        id: message.id.clone(),
        from: from.as_str().to_owned(),
        from_crc: from.crc32(),
        received_at_ms: state.clock.now_ms(),
        payload: payload.to_string(),
        webhook: webhook.to_string(),
    };
    if state.store.receive_inbound(&inbound).await? {
        Metrics::add(&state.metrics.inbound_received, 1);
    }
    // The customer-service window opens when the customer writes.
    state.store.customer_wrote(from.as_str(), message.timestamp.saturating_mul(1000)).await?;
    Ok(None)
}

/// Downloads a customer's media into the media store: `Ok(Ok(id))`, or `Ok(Err(why))` when
/// Cloud refuses it for good; `Err` when worth retrying (the webhook is answered 503 and Meta
/// delivers it again).
async fn download(
    state: &AppState,
    cloud: &CloudClient,
    media: &CloudMedia,
) -> Result<Result<String, String>, ApiError> {
    let id = media_id(&media.cloud_id);
    if state.store.media(&id).await?.is_some() {
        return Ok(Ok(id));
    }
    // A download of this media cut short earlier (a crash) may have left an unfinished upload.
    state.store.delete_media(&id).await?;
    let found = match cloud.media_url(&media.cloud_id).await {
        Ok(found) => found,
        Err(e) => return refused_or_retry(&e),
    };
    let mime = found.mime_type.as_deref().or(media.mime_type.as_deref());
    let media_type = MediaType::received(mime.unwrap_or("application/octet-stream"));
    let mut response = match cloud.download(&found.url).await {
        Ok(response) => response,
        Err(e) => return refused_or_retry(&e),
    };
    let mut upload = Upload::with_id(id, state.store.clone(), media_type, state.clock.clone());
    let mut received = 0u64;
    loop {
        match response.chunk().await {
            Ok(Some(bytes)) => {
                received += bytes.len() as u64;
                if received > upload.media_type.max_bytes() {
                    let too_large = upload.media_type.too_large();
                    upload.abandon().await;
                    return Ok(Err(too_large.details));
                }
                if let Err(e) = upload.write(&bytes).await {
                    upload.abandon().await;
                    return Err(e);
                }
            }
            Ok(None) => break,
            Err(e) => {
                upload.abandon().await;
                return Err(not_now(&format!("the media download from Cloud broke off: {e}")));
            }
        }
    }
    upload.finish().await.map(Ok)
}

/// Cloud refused a media lookup or download: for good (a 4xx with Cloud's error), or worth a
/// retry.
fn refused_or_retry(error: &CloudError) -> Result<Result<String, String>, ApiError> {
    match error {
        CloudError::Http { status, error: Some(_), .. } if *status < 500 && *status != 429 => {
            Ok(Err(error.to_string()))
        }
        CloudError::Refused(_) => Ok(Err(error.to_string())),
        _ => Err(not_now(&format!("cannot download the customer's media: {error}"))),
    }
}

/// Premise's id for media Cloud knows as `cloud_id`: a UUID derived from it, the same on every
/// replica and every delivery of the webhook.
fn media_id(cloud_id: &str) -> String {
    let digest = Sha256::digest(format!("premise:cloud-media:{cloud_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

/// 503: Meta delivers the webhook again later.
fn not_now(why: &str) -> ApiError {
    ApiError::new(ErrorCode::ServiceNotReady, why).with_status(StatusCode::SERVICE_UNAVAILABLE)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_ids_are_uuids_derived_from_cloud_ids() {
        let id = media_id("1234567890");
        assert_eq!(id, media_id("1234567890"));
        assert_ne!(id, media_id("1234567891"));
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    }
}
