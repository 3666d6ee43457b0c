//! The Cloud API over HTTP: one function per call Premise makes, each answering what Cloud
//! said, typed. Nothing here decides what an answer means for a message ([`super::errors`]
//! does); every call notes what it learnt about the connection in [`super::gateway`].
//!
//! Paths (Meta's OpenAPI, `cloud-api/business-messaging-api_v23.0.yaml`):
//! `POST /{version}/{phone-number-id}/messages` (sends and read receipts),
//! `POST /{version}/{phone-number-id}/media` (multipart upload), `GET /{version}/{media-id}`
//! (a media's short-lived URL), that URL itself, and `GET /{version}/{phone-number-id}`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use premise_wire::StatusCustomer;
use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::errors::{CloudError, GraphError};
use super::gateway::{GatewayState, PhoneNumber};
use super::settings::CloudSettings;

/// What `GET /{media-id}` says of a media.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MediaUrl {
    pub url: String,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub sha256: Option<String>,
}

/// The Cloud API, as one phone number of one business uses it.
pub struct CloudClient {
    settings: CloudSettings,
    http: reqwest::Client,
    /// What the last calls said about the connection, for `/v1/health`.
    pub(crate) gateway: Arc<GatewayState>,
}

impl fmt::Debug for CloudClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudClient").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl CloudClient {
    pub fn new(settings: CloudSettings) -> anyhow::Result<Self> {
        // Redirects are never followed: the token would go wherever a 3xx points.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(256)
            .build()?;
        Ok(Self { settings, http, gateway: Arc::new(GatewayState::default()) })
    }

    pub fn settings(&self) -> &CloudSettings {
        &self.settings
    }

    /// `POST /{phone-number-id}/messages` with a send body: the message's `wamid`, and the
    /// customer's business-scoped user ids when the answer names them (`contacts[0].user_id`,
    /// `parent_user_id`, since 2026).
    pub async fn send_message(&self, body: &Value) -> Result<(String, StatusCustomer), CloudError> {
        #[derive(Deserialize)]
        struct Sent {
            messages: Vec<SentMessage>,
            #[serde(default)]
            contacts: Vec<SentContact>,
        }
        #[derive(Deserialize)]
        struct SentContact {
            user_id: Option<String>,
            parent_user_id: Option<String>,
        }
        #[derive(Deserialize)]
        struct SentMessage {
            id: String,
        }
        let url = self.number_url("messages");
        let answer = self.call(self.request(Method::POST, &url).json(body)).await?;
        match serde_json::from_slice::<Sent>(&answer) {
            Ok(sent) if !sent.messages.is_empty() => {
                let customer =
                    sent.contacts.into_iter().next().map_or_else(StatusCustomer::default, |c| {
                        StatusCustomer {
                            user_id: c.user_id.clone(),
                            recipient_user_id: c.user_id,
                            parent_user_id: c.parent_user_id,
                            ..StatusCustomer::default()
                        }
                    });
                let wamid = sent.messages.into_iter().next().map(|m| m.id).unwrap_or_default();
                Ok((wamid, customer))
            }
            _ => Err(CloudError::Transport(format!(
                "the Cloud API accepted the message but its answer names no message id: {}",
                String::from_utf8_lossy(&answer)
            ))),
        }
    }

    /// `POST /{phone-number-id}/messages` with a read receipt for the customer's message, and a
    /// typing indicator if `typing`.
    pub async fn mark_read(&self, message_id: &str, typing: bool) -> Result<(), CloudError> {
        let mut body =
            json!({ "messaging_product": "whatsapp", "status": "read", "message_id": message_id });
        if typing {
            body["typing_indicator"] = json!({ "type": "text" });
        }
        let url = self.number_url("messages");
        self.call(self.request(Method::POST, &url).json(&body)).await.map(drop)
    }

    /// `POST /{phone-number-id}/media`, multipart, the bytes streamed from `chunks`: the
    /// Cloud media id.
    pub async fn upload_media<S>(
        &self,
        mime_type: &str,
        size: u64,
        file_name: &str,
        chunks: S,
    ) -> Result<String, CloudError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static,
    {
        #[derive(Deserialize)]
        struct Uploaded {
            id: String,
        }
        let file =
            reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(chunks), size)
                .file_name(file_name.to_owned())
                .mime_str(mime_type)
                .map_err(|e| CloudError::Transport(format!("media type '{mime_type}': {e}")))?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", mime_type.to_owned())
            .part("file", file);
        let url = self.number_url("media");
        // An upload may take longer than an API call; the engine's send timeout bounds it.
        let upload = self.request(Method::POST, &url).multipart(form);
        let answer =
            self.call(upload.timeout(self.settings.timeout.max(Duration::from_secs(300)))).await?;
        serde_json::from_slice::<Uploaded>(&answer).map(|u| u.id).map_err(|e| {
            CloudError::Transport(format!("the Cloud API's answer to an upload has no id: {e}"))
        })
    }

    /// `GET /{media-id}`: where to download a customer's media from (valid 5 minutes).
    pub async fn media_url(&self, media_id: &str) -> Result<MediaUrl, CloudError> {
        let url = format!("{}/{}/{}", self.base(), self.settings.api_version, media_id);
        let answer = self.call(self.request(Method::GET, &url)).await?;
        serde_json::from_slice(&answer)
            .map_err(|e| CloudError::Transport(format!("the media lookup's answer: {e}")))
    }

    /// Downloads a media URL from [`CloudClient::media_url`], with the token: the response,
    /// its body still to be read (the caller reads it up to the media's size limit). The token
    /// goes only to Meta's hosts ([`CloudClient::may_have_the_token`]).
    pub async fn download(&self, url: &str) -> Result<reqwest::Response, CloudError> {
        self.may_have_the_token(url)?;
        let response = self
            .request(Method::GET, url)
            // A download may take longer than an API call; its body is read as it streams.
            .timeout(self.settings.timeout.max(Duration::from_secs(300)))
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        if response.status().is_success() {
            self.gateway.answered();
            Ok(response)
        } else if response.status().is_redirection() {
            let to = response.headers().get(reqwest::header::LOCATION);
            let to = to.and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            Err(CloudError::Refused(format!(
                "the media download answered {} to {to:?}; redirects are not followed",
                response.status()
            )))
        } else {
            Err(self.failed(response).await)
        }
    }

    /// `GET /{phone-number-id}`: the number's name and quality rating.
    pub async fn phone_number(&self) -> Result<PhoneNumber, CloudError> {
        let url = format!(
            "{}?fields=display_phone_number,verified_name,quality_rating",
            self.number_base()
        );
        let answer = self.call(self.request(Method::GET, &url)).await?;
        serde_json::from_slice(&answer)
            .map_err(|e| CloudError::Transport(format!("the phone number's answer: {e}")))
    }

    fn base(&self) -> &str {
        self.settings.base_url.trim_end_matches('/')
    }

    /// Whether `url` may be sent the access token: a URL of the configured `cloud.base_url`'s
    /// scheme, host and port (the Graph API, or a test's fake), or an https URL of a host
    /// where Meta serves media ([`MEDIA_HOSTS`]).
    fn may_have_the_token(&self, url: &str) -> Result<(), CloudError> {
        let refused = |why: String| Err(CloudError::Refused(why));
        let Ok(target) = reqwest::Url::parse(url) else {
            return refused(format!("the media URL {url:?} does not parse"));
        };
        let base = reqwest::Url::parse(self.base()).ok();
        let same_origin = base.is_some_and(|base| {
            base.scheme() == target.scheme()
                && base.host_str() == target.host_str()
                && base.port_or_known_default() == target.port_or_known_default()
        });
        let host = target.host_str().unwrap_or_default().to_ascii_lowercase();
        let meta = target.scheme() == "https" && MEDIA_HOSTS.contains(&host.as_str());
        if same_origin || meta {
            Ok(())
        } else {
            refused(format!(
                "the media URL's host {host:?} ({}) is not one of Meta's; the token is not sent there",
                target.scheme()
            ))
        }
    }

    fn number_base(&self) -> String {
        format!("{}/{}/{}", self.base(), self.settings.api_version, self.settings.phone_number_id)
    }

    fn number_url(&self, edge: &str) -> String {
        format!("{}/{edge}", self.number_base())
    }

    fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.http
            .request(method, url)
            .header(AUTHORIZATION, format!("Bearer {}", self.settings.access_token.expose()))
    }

    /// Sends the request; the body of a 2xx answer, or what went wrong.
    async fn call(&self, request: RequestBuilder) -> Result<Bytes, CloudError> {
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        if !response.status().is_success() {
            return Err(self.failed(response).await);
        }
        let body = read_capped(response, MAX_ANSWER_BYTES).await.inspect_err(|error| {
            tracing::warn!(%error, "a Cloud API answer was not read whole; a transient failure");
            self.gateway.failed(error);
        })?;
        self.gateway.answered();
        Ok(body)
    }

    fn transport(&self, error: &reqwest::Error) -> CloudError {
        // reqwest's message names the URL; the URL never holds a secret.
        let error = CloudError::Transport(crate::error_chain(error));
        self.gateway.failed(&error);
        error
    }

    async fn failed(&self, response: reqwest::Response) -> CloudError {
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = read_capped(response, MAX_ERROR_BYTES).await.unwrap_or_default();
        let error = CloudError::Http {
            status: status.as_u16(),
            retry_after,
            error: GraphError::parse(&body),
        };
        if status != StatusCode::NOT_FOUND
            || !matches!(&error, CloudError::Http { error: None, .. })
        {
            self.gateway.failed(&error);
        } else {
            // A bare 404: the base URL or the phone number id is wrong.
            self.gateway.failed(&CloudError::Transport(format!(
                "{} answered 404: check cloud.base_url, cloud.api_version and cloud.phone_number_id",
                self.base()
            )));
        }
        error
    }
}

/// The largest answer of the API read (a JSON document of a few hundred bytes normally): a
/// larger one is not read on, and counts as a transient failure, so memory stays bounded
/// whatever comes back.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// The part of an error answer read for Cloud's error object.
const MAX_ERROR_BYTES: usize = 64 * 1024;

/// Hosts where Meta serves the media a customer sent (the media lookup's `url`), which the
/// token may be sent to, over https. Meta's reference: "Retrieve Media URL" answers
/// `https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=...`.
pub const MEDIA_HOSTS: [&str; 1] = ["lookaside.fbsbx.com"];

/// The body of `response`, up to `cap` bytes; a transport error past it (nothing more is
/// read).
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Bytes, CloudError> {
    let failed = |why: String| CloudError::Transport(why);
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(failed(format!("the answer is larger than {cap} bytes; not read")));
    }
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| failed(format!("reading the answer: {e}")))?
    {
        if body.len() + chunk.len() > cap {
            return Err(failed(format!("the answer is larger than {cap} bytes; not read on")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// `Retry-After` in seconds (the HTTP-date form is not used by the Graph API).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let seconds: f64 = value.parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(3_600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_retry_after() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}
