//! The bridge to Meta's WhatsApp Cloud API: On-Premises messages, translated
//! ([`translate`]), sent to `POST /{phone-number-id}/messages`; what Cloud answers turned into
//! an outcome the engine understands ([`errors`]); uploaded media exchanged for Cloud media
//! ids ([`media`]); sends paced to the number's throughput ([`limit`]); the connection's health
//! ([`gateway`]). What Cloud sends back (statuses, customers' messages) arrives as signed
//! webhooks, read by [`webhook`] and recorded by the HTTP front.

mod client;
pub mod errors;
pub mod fetch_guard;
mod gateway;
mod limit;
pub mod links;
pub mod media;
mod settings;
pub mod statuses;
pub mod translate;
pub mod webhook;

use std::sync::Arc;

use async_trait::async_trait;
use premise_base::UnixMs;
use premise_store::{CloudMedia, Store};

pub use client::{CloudClient, MediaUrl};
pub use errors::{CloudError, GraphError};
pub use gateway::PhoneNumber;
pub use settings::{CloudSettings, GRAPH_URL, Secret};

use self::errors::Verdict;
use self::limit::Limiter;
use self::media::MediaError;
use crate::{Clock, Gateway, NotTold, OutboundMessage, SendOutcome, Upstream, UpstreamContext};

/// The Cloud API as the engine's upstream.
#[derive(Debug)]
pub struct Cloud {
    client: Arc<CloudClient>,
    store: Arc<dyn Store>,
    limiter: Limiter,
    clock: Clock,
    /// Fetches links named with a media provider ([`links`]); never carries Cloud's token.
    fetcher: reqwest::Client,
}

impl Cloud {
    /// The upstream, and its background look at the phone number (stopped with `context.stop`).
    pub fn start(
        client: Arc<CloudClient>,
        store: Arc<dyn Store>,
        context: &UpstreamContext,
    ) -> Self {
        tokio::spawn(watch(client.clone(), context.clock.clone(), context.stop.clone()));
        let limiter = Limiter::new(client.settings().max_per_second, context.clock.clone());
        // No redirects (a link's host is checked, not where it points), and no internal
        // address, checked as connections are made.
        let allow = Arc::new(client.settings().link_fetch_allow.clone());
        let fetcher = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(fetch_guard::GuardedResolver(allow)))
            .build()
            .expect("an HTTP client with default TLS settings builds");
        Self { client, store, limiter, clock: context.clock.clone(), fetcher }
    }

    /// The send, after its media have Cloud ids.
    async fn send_translated(
        &self,
        message: &OutboundMessage,
        cloud_media: &std::collections::HashMap<String, CloudMedia>,
        fetched: &std::collections::HashMap<String, String>,
    ) -> SendOutcome {
        let mut ids: std::collections::HashMap<String, String> =
            cloud_media.iter().map(|(k, v)| (k.clone(), v.cloud_id.clone())).collect();
        let referenced = translate::referenced_messages(&message.message);
        if !referenced.is_empty() {
            match self.store.upstream_ids_of(&referenced).await {
                Ok(found) => ids.extend(found.into_iter().map(|u| (u.message_id, u.upstream_id))),
                Err(e) => return SendOutcome::transient(format!("cannot read message ids: {e}")),
            }
        }
        let mut body = translate::cloud_request(&message.message, &ids);
        links::links_to_ids(&mut body, fetched);
        // After every wait (the pacing slot, media uploads, lookups), just before the request.
        if let Some(refused) = message.fence.refuse() {
            return refused;
        }
        match self.client.send_message(&body).await {
            Ok((wamid, customer)) => SendOutcome::Acknowledged {
                upstream_id: Some(wamid),
                billing: None,
                customer: Box::new(customer),
            },
            Err(error) => {
                if self.forgot_media(&error, cloud_media).await {
                    return SendOutcome::transient(format!(
                        "Cloud no longer knows the message's media ({error}); uploading again"
                    ));
                }
                match errors::classify(&error) {
                    Verdict::Retry { why, retry_after, pause_all } => {
                        if let Some(pause) = pause_all {
                            self.limiter.pause(pause);
                        }
                        SendOutcome::Transient { why, retry_after }
                    }
                    Verdict::Fail(error) => SendOutcome::Permanent(error),
                }
            }
        }
    }

    /// The outcome of a send whose media could not be given Cloud ids.
    fn media_failure(&self, error: MediaError) -> SendOutcome {
        match error {
            MediaError::Missing(error) => SendOutcome::Permanent(error),
            MediaError::Failed(why, cloud) => match cloud.as_ref().map(errors::classify) {
                // Cloud refused the upload for good (a type or size it does not take).
                Some(Verdict::Fail(error)) => SendOutcome::Permanent(error),
                Some(Verdict::Retry { retry_after, pause_all, .. }) => {
                    if let Some(pause) = pause_all {
                        self.limiter.pause(pause);
                    }
                    SendOutcome::Transient { why, retry_after }
                }
                None => SendOutcome::transient(why),
            },
        }
    }

    /// When Cloud refuses a media id it gave out more than a minute ago (expired or lost), the
    /// ids are forgotten so the retry uploads again. A fresh id refused is the message's fault.
    async fn forgot_media(
        &self,
        error: &CloudError,
        cloud_media: &std::collections::HashMap<String, CloudMedia>,
    ) -> bool {
        let CloudError::Http { error: Some(graph), .. } = error else { return false };
        let says_media = [&graph.message, graph.details.as_deref().unwrap_or_default()]
            .iter()
            .any(|text| text.to_ascii_lowercase().contains("media"));
        if !matches!(graph.code, 100 | 131009 | 131053) || !says_media {
            return false;
        }
        let stale_before = UnixMs::from_secs(self.clock.now().secs() - 60);
        let mut forgot = false;
        for (media_id, known) in cloud_media {
            if known.uploaded_at < stale_before {
                forgot |= self.store.forget_cloud_media(media_id, &known.cloud_id).await.is_ok();
            }
        }
        forgot
    }

    /// The send, once its slot has come: media exchanged for Cloud ids, then the request.
    async fn send_now(&self, message: &OutboundMessage) -> SendOutcome {
        // The canonical JSON once, for both kinds of media to exchange for Cloud ids.
        let request = serde_json::to_value(&message.message).unwrap_or_default();
        let uploaded = translate::uploaded_media_in(&request);
        let cloud_media = if uploaded.is_empty() {
            Default::default()
        } else {
            match media::cloud_ids(&self.client, &self.store, &self.clock, &uploaded).await {
                Ok(ids) => ids,
                Err(error) => return self.media_failure(error),
            }
        };
        let provider_links = links::provider_links(&request);
        let fetched = if provider_links.is_empty() {
            Default::default()
        } else {
            match links::upload_links(&self.client, &self.fetcher, &self.store, &provider_links)
                .await
            {
                Ok(ids) => ids,
                Err(error) => return self.media_failure(error),
            }
        };
        self.send_translated(message, &cloud_media, &fetched).await
    }
}

#[async_trait]
impl Upstream for Cloud {
    /// Paced first, before anything is read, translated or uploaded: while Cloud's rate sets
    /// the pace, every slot of every shard's window is a send waiting here, so a waiting send
    /// holds only its message (the rest of the send is boxed and made once the slot comes).
    async fn send(&self, message: &OutboundMessage) -> SendOutcome {
        let max_wait = self.client.settings().max_pacing_wait;
        if let Err(wait) = self.limiter.acquire(message.shard, message.shards, max_wait).await {
            return SendOutcome::Transient {
                why: format!("paced: the shard's next send slot is {wait:?} away"),
                retry_after: Some(wait),
            };
        }
        Box::pin(self.send_now(message)).await
    }

    async fn mark_read(&self, inbound_id: &str, typing: bool) -> Result<(), NotTold> {
        Ok(self.client.mark_read(inbound_id, typing).await?)
    }

    fn gateway(&self) -> Gateway {
        self.client.gateway.gateway()
    }
}

impl CloudClient {
    /// What the last calls and the phone number check said about the connection.
    pub fn gateway(&self) -> Gateway {
        self.gateway.gateway()
    }

    /// The phone number as the last check found it (name, quality rating).
    pub fn phone(&self) -> Option<PhoneNumber> {
        self.gateway.phone()
    }
}

/// Looks the phone number up now and every `client.settings().check_interval`, until `stop`.
async fn watch(client: Arc<CloudClient>, clock: Clock, stop: tokio_util::sync::CancellationToken) {
    loop {
        match client.phone_number().await {
            Ok(phone) => client.gateway.checked(phone),
            Err(e) => tracing::warn!(error = %e, "cannot look up the Cloud phone number"),
        }
        tokio::select! {
            () = clock.sleep(client.settings().check_interval) => {}
            () = stop.cancelled() => return,
        }
    }
}
