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
use std::sync::Mutex;

use axum::http::StatusCode;
use premise_base::UnixMs;
use premise_engine::Metrics;
use premise_store::{CustomerMoved, KnownCustomer, NewInbound, Routed};
use premise_upstream::cloud::statuses::NotRecorded;
use premise_upstream::cloud::webhook::{
    CloudMedia, CloudStatus, CustomerMessage, Notification, Unmapped, changed_number,
};
use premise_upstream::cloud::{self, CloudClient, CloudError};
use premise_wire::ErrorCode;
use premise_wire::media::MediaType;
use premise_wire::messages::{Recipient, UserId};
use sha2::{Digest, Sha256};

use super::super::media::Upload;
use super::super::{ApiError, AppState};

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
    identities(state, notification).await?;
    Ok(unmapped)
}

/// Customers seen by this process, by business-scoped user id, as last kept (bounded: forgotten
/// all at once past [`SEEN_MAX`], which costs one write per customer seen again).
#[derive(Debug, Default)]
pub struct SeenCustomers(Mutex<HashMap<String, KnownCustomer>>);

const SEEN_MAX: usize = 100_000;

impl SeenCustomers {
    /// Of `customers`, those that say something this process has not kept.
    fn news(&self, customers: Vec<KnownCustomer>) -> Vec<KnownCustomer> {
        let Ok(seen) = self.0.lock() else { return customers };
        customers
            .into_iter()
            .filter(|c| seen.get(&c.user_id).is_none_or(|kept| kept.is_told_more_by(c)))
            .collect()
    }

    fn kept(&self, customers: &[KnownCustomer]) {
        let Ok(mut seen) = self.0.lock() else { return };
        if seen.len() + customers.len() > SEEN_MAX {
            seen.clear();
        }
        for customer in customers {
            seen.entry(customer.user_id.clone())
                .or_insert_with(|| customer.clone())
                .absorb(customer);
        }
    }

    fn forget(&self, user_id: &str) {
        if let Ok(mut seen) = self.0.lock() {
            seen.remove(user_id);
        }
    }
}

/// Keeps what the webhook says of who customers are (statuses and messages alike), and tells
/// the integration of each customer whose number or business-scoped user id changed: a number
/// now carried by a new BSUID, Meta's `user_id_update`, or a changed-number `system` message.
async fn identities(state: &AppState, notification: &Notification) -> Result<(), ApiError> {
    let now = state.clock.now();
    // A customer's profile name comes with their messages only.
    let said = notification
        .statuses
        .iter()
        .map(|s| (&s.customer, None))
        .chain(notification.messages.iter().map(|m| (&m.customer, m.profile_name.as_ref())))
        .filter_map(|(customer, profile_name)| {
            Some(KnownCustomer {
                user_id: customer.user_id.clone()?,
                wa_id: customer.wa_id.clone(),
                parent_user_id: customer.parent_user_id.clone(),
                username: customer.username.clone(),
                profile_name: profile_name.cloned(),
            })
        });
    let news = state.seen_customers.news(KnownCustomer::merged(said));
    if !news.is_empty() {
        let moved = state.store.learn_customers(&news, now).await?;
        state.seen_customers.kept(&news);
        for CustomerMoved { previous, current } in moved {
            state.seen_customers.forget(&previous.user_id);
            tell_changed(state, &previous, &current, now.secs()).await?;
        }
    }
    let renames = notification.user_id_updates.iter().map(|u| {
        let current = KnownCustomer {
            user_id: u.current.clone(),
            wa_id: u.wa_id.clone(),
            ..KnownCustomer::default()
        };
        (u.previous.clone(), current, u.timestamp.unwrap_or(now.secs()), true)
    });
    // A changed-number system message is delivered as it is (it is the customer's message);
    // what it says is kept.
    let from_system = notification.messages.iter().filter_map(|m| {
        let new = m.changed_to().filter(|n| UserId::looks_like(n))?;
        let current = KnownCustomer { user_id: new, ..KnownCustomer::default() };
        Some((m.customer.user_id.clone()?, current, m.timestamp, false))
    });
    for (previous, current, at, tell) in renames.chain(from_system).collect::<Vec<_>>() {
        let before = state.store.customer_renamed(&previous, &current, now).await?;
        state.seen_customers.forget(&previous);
        state.seen_customers.forget(&current.user_id);
        if tell {
            let previous =
                before.unwrap_or(KnownCustomer { user_id: previous, ..Default::default() });
            let mut current = current;
            current.wa_id = current.wa_id.or_else(|| previous.wa_id.clone());
            tell_changed(state, &previous, &current, at).await?;
        }
    }
    Ok(())
}

/// Delivers the On-Premises `system` message of a changed number for a customer known as
/// `previous`, now `current` (once: its id derives from both).
async fn tell_changed(
    state: &AppState,
    previous: &KnownCustomer,
    current: &KnownCustomer,
    at_secs: i64,
) -> Result<(), ApiError> {
    let from = previous.wa_id.as_deref().unwrap_or(&previous.user_id);
    let to = current.wa_id.as_deref().unwrap_or(&current.user_id);
    let digest = Sha256::digest(
        format!("premise:changed:{}:{}", previous.user_id, current.user_id).as_bytes(),
    );
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    let id = format!("premise.changed.{hex}");
    let (payload, webhook) = changed_number(
        &id,
        from,
        to,
        Some((previous.user_id.as_str(), current.user_id.as_str())),
        at_secs,
    );
    tracing::info!(%from, %to, "a customer changed number; the integration is told");
    let inbound = NewInbound {
        id,
        from: Routed::new(from),
        received_at: state.clock.now(),
        payload: payload.to_string(),
        webhook: webhook.to_string(),
    };
    if state.store.receive_inbound(&inbound).await? {
        Metrics::add(&state.metrics.inbound_received, 1);
    }
    Ok(())
}

async fn statuses(state: &AppState, statuses: &[CloudStatus]) -> Result<(), ApiError> {
    let reported = cloud::statuses::report(
        state.store.as_ref(),
        &state.clock,
        state.statuses.as_ref(),
        statuses,
    )
    .await
    .map_err(|e| match e {
        NotRecorded::Store(e) => ApiError::from(e),
        NotRecorded::Stopping => not_now("the status recorder is stopping"),
    })?;
    Metrics::add(&state.metrics.upstream_statuses_unknown, reported.unknown);
    Metrics::add(&state.metrics.upstream_statuses, reported.recorded);
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
    let Ok(from) = Recipient::parse("from", &message.from) else {
        tracing::warn!(id = %message.id, from = %message.from, "a customer's message from a sender that is neither a phone number nor a business-scoped user id; kept as not mapped");
        let part = serde_json::Value::Object(message.message.clone());
        let why = format!(
            "the sender '{}' is neither a phone number nor a business-scoped user id",
            message.from
        );
        return Ok(Some(Unmapped::new(&part, why)));
    };
    let mut media_failure = None;
    let media_id = match message.media() {
        None => None,
        Some(media) => match download(state, cloud, &media).await? {
            Downloaded::Stored(id) => Some(id),
            Downloaded::Refused(why) => {
                media_failure = Some(why);
                None
            }
        },
    };
    let context_id = match message.context_id() {
        Some(wamid) => {
            let found = state.store.messages_by_upstream_id(&[wamid.to_owned()]).await?;
            found.into_iter().next().map(|u| u.message_id)
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
        from: Routed::from(&from),
        received_at: state.clock.now(),
        payload: payload.to_string(),
        webhook: webhook.to_string(),
    };
    if state.store.receive_inbound(&inbound).await? {
        Metrics::add(&state.metrics.inbound_received, 1);
    }
    // The customer-service window opens when the customer writes: for each id the integration
    // may reply to (their number and their business-scoped user id, when Meta gave both).
    let wrote_at = UnixMs::from_secs(message.timestamp);
    state.store.customer_wrote(from.as_str(), wrote_at).await?;
    if let Some(user_id) = message.customer.user_id.as_deref().filter(|u| *u != from.as_str()) {
        state.store.customer_wrote(user_id, wrote_at).await?;
    }
    Ok(None)
}

/// What became of a customer's media.
enum Downloaded {
    /// In the media store, under this id.
    Stored(String),
    /// Cloud refused it for good (gone, too large): why.
    Refused(String),
}

/// Downloads a customer's media into the media store; `Err` when worth retrying (the webhook is
/// answered 503 and Meta delivers it again).
async fn download(
    state: &AppState,
    cloud: &CloudClient,
    media: &CloudMedia,
) -> Result<Downloaded, ApiError> {
    let id = media_id(&media.cloud_id);
    if state.store.media(&id).await?.is_some() {
        return Ok(Downloaded::Stored(id));
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
                    return Ok(Downloaded::Refused(too_large.details));
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
    upload.finish().await.map(Downloaded::Stored)
}

/// Cloud refused a media lookup or download: for good (a 4xx with Cloud's error), or worth a
/// retry.
fn refused_or_retry(error: &CloudError) -> Result<Downloaded, ApiError> {
    match error {
        CloudError::Http { status, error: Some(_), .. } if *status < 500 && *status != 429 => {
            Ok(Downloaded::Refused(error.to_string()))
        }
        CloudError::Refused(_) => Ok(Downloaded::Refused(error.to_string())),
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
