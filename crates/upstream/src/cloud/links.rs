//! Media links that name an On-Premises media provider (`"provider":{"name"}`): Cloud's servers
//! fetch links themselves and cannot use the provider's credentials, so Premise fetches each
//! such link with them (bearer or basic, from the providers the store keeps), uploads the bytes
//! to Cloud and sends the Cloud media id in place of the link. Links without a provider go to
//! Cloud as they are.
//!
//! A link its server refuses for good (a 4xx other than 408 and 429) or a file larger than
//! media may be fails the message with On-Premises' 400 "Media download error"; a server that
//! is down or slow is retried like any send. A provider Premise does not know (never
//! configured, or deleted since) leaves the link to Cloud as it is, with a warning in the log:
//! Cloud fetches it without credentials, as On-Premises would have without a provider.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use premise_store::Store;
use premise_wire::StatusError;
use premise_wire::media::MAX_MEDIA_BYTES;
use premise_wire::providers::{self, Credentials, Provider, Providers};
use serde_json::Value;

use super::client::CloudClient;
use super::fetch_guard::FetchAllow;
use super::media::MediaError;

const FETCH_TIMEOUT: Duration = Duration::from_secs(120);

/// The media objects of `message` (its canonical JSON) with a link and a provider: each link
/// once, with its provider's name.
pub fn provider_links(message: &Value) -> Vec<(String, String)> {
    fn walk(value: &Value, found: &mut Vec<(String, String)>) {
        match value {
            Value::Object(obj) => {
                if let (Some(link), Some(name)) = (
                    obj.get("link").and_then(Value::as_str),
                    obj.get("provider").and_then(|p| p["name"].as_str()),
                ) && !found.iter().any(|(l, _)| l == link)
                {
                    found.push((link.to_owned(), name.to_owned()));
                }
                obj.values().for_each(|v| walk(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(message, &mut found);
    found
}

/// Cloud's media id for each link of `links`, fetched with its provider's credentials.
pub async fn upload_links(
    client: &CloudClient,
    fetcher: &reqwest::Client,
    store: &Arc<dyn Store>,
    links: &[(String, String)],
) -> Result<HashMap<String, String>, MediaError> {
    let allow = &client.settings().link_fetch_allow;
    let document = store
        .document(providers::DOCUMENT)
        .await
        .map_err(|e| MediaError::Failed(format!("cannot read the media providers: {e}"), None))?;
    let configured: Providers = match document {
        Some(text) => serde_json::from_str(&text).map_err(|e| {
            MediaError::Failed(format!("cannot read the media providers: {e}"), None)
        })?,
        None => Providers::default(),
    };
    let mut ids = HashMap::new();
    for (link, name) in links {
        let Some(provider) = configured.named(name) else {
            tracing::warn!(provider = %name, %link, "no such media provider: Cloud fetches the link itself");
            continue;
        };
        check_link(link, name, provider, allow)?;
        let request = fetcher.get(link).timeout(FETCH_TIMEOUT);
        let request = match &provider.config {
            Credentials::Bearer(token) => request.bearer_auth(token),
            Credentials::Basic { username, password } => {
                request.basic_auth(username, Some(password))
            }
        };
        let response = request.send().await.map_err(|e| {
            let why = format!("cannot fetch {link}: {}", crate::error_chain(&e));
            // Refused by the guard (every address internal): for good, not worth a retry.
            if why.contains(super::fetch_guard::REFUSED) {
                download_error(why)
            } else {
                MediaError::Failed(why, None)
            }
        })?;
        let status = response.status();
        if status.is_redirection() {
            return Err(download_error(format!(
                "{link} answered {status}: redirects are not followed with a provider's credentials"
            )));
        }
        if !status.is_success() {
            let why = format!("{link} answered {status} to provider '{name}'");
            return Err(if status.is_client_error() && status != 408 && status != 429 {
                download_error(why)
            } else {
                MediaError::Failed(why, None)
            });
        }
        let mime = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|t| t.split(';').next().unwrap_or_default().trim().to_owned())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        let bytes = read_limited(response, link).await?;
        let file_name = link.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("media");
        let size = bytes.len() as u64;
        let body = futures_util::stream::once(async move { Ok::<_, std::io::Error>(bytes) });
        let cloud_id = client.upload_media(&mime, size, file_name, body).await.map_err(|e| {
            MediaError::Failed(format!("cannot upload the media of {link}: {e}"), Some(e))
        })?;
        ids.insert(link.clone(), cloud_id);
    }
    Ok(ids)
}

/// Whether `link` may be fetched with provider `name`'s credentials: an http(s) URL on one of
/// the provider's `hosts`, and not at an internal address named directly (a name is checked on
/// every address it resolves to as the connection is made, see [`super::fetch_guard`]).
fn check_link(
    link: &str,
    name: &str,
    provider: &Provider,
    allow: &FetchAllow,
) -> Result<(), MediaError> {
    let refused = |why: String| Err(download_error(why));
    let Ok(url) = reqwest::Url::parse(link) else {
        return refused(format!("{link} is not a URL"));
    };
    if !matches!(url.scheme(), "http" | "https") {
        return refused(format!("{link}: only http and https links are fetched"));
    }
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    if !provider.lends_to(host) {
        return refused(format!(
            "{link}: {host} is not one of provider '{name}''s hosts, so its credentials are not \
             sent there (an admin lists them in the provider's \"hosts\")"
        ));
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>()
        && !allow.permits(host, ip)
    {
        return refused(format!(
            "{link}: {ip} is an internal address; links are not fetched from internal addresses \
             unless cloud.link_fetch_allow names it"
        ));
    }
    Ok(())
}

async fn read_limited(mut response: reqwest::Response, link: &str) -> Result<Bytes, MediaError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| MediaError::Failed(format!("cannot read {link}: {e}"), None))?
    {
        if (bytes.len() + chunk.len()) as u64 > MAX_MEDIA_BYTES {
            return Err(download_error(format!("{link} is larger than {MAX_MEDIA_BYTES} bytes")));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(bytes))
}

fn download_error(details: String) -> MediaError {
    MediaError::Missing(StatusError {
        code: 400,
        title: "Media download error".to_owned(),
        details: Some(details),
    })
}

/// Replaces each fetched link of `body` (a Cloud request) with its Cloud media id.
pub fn links_to_ids(body: &mut Value, ids: &HashMap<String, String>) {
    match body {
        Value::Object(obj) => {
            let fetched = obj.get("link").and_then(Value::as_str).and_then(|link| ids.get(link));
            if let Some(id) = fetched.cloned() {
                obj.remove("link");
                obj.insert("id".into(), Value::String(id));
            }
            obj.values_mut().for_each(|v| links_to_ids(v, ids));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| links_to_ids(v, ids)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn links_with_a_provider_become_ids() {
        let message = json!({"type": "image", "image": {"link": "https://cdn.example/a.jpg",
            "provider": {"name": "cdn"}}, "other": {"link": "https://plain.example/b.jpg"}});
        assert_eq!(
            provider_links(&message),
            vec![("https://cdn.example/a.jpg".to_owned(), "cdn".to_owned())]
        );
        let mut body = json!({"image": {"link": "https://cdn.example/a.jpg"},
            "other": {"link": "https://plain.example/b.jpg"}});
        let ids = HashMap::from([("https://cdn.example/a.jpg".to_owned(), "123".to_owned())]);
        links_to_ids(&mut body, &ids);
        assert_eq!(
            body,
            json!({"image": {"id": "123"}, "other": {"link": "https://plain.example/b.jpg"}})
        );
    }
}
