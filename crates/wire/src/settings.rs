//! `/v1/settings/application` (`docs/onprem-api.md` section 8): the stored document, how a PATCH
//! changes it, and the typed view the pipeline reads.
//!
//! The stored document holds only what was set. Known fields are validated and normalised
//! (numbers given as strings become numbers); fields Premise has no use for (`on_call_pager`,
//! `media.auto_download`, `db_garbagecollector_enable`, ...) are kept as given, so an integration
//! reads back what it wrote.

use serde_json::{Map, Value, json};

use crate::Rejection;
use crate::messages::kind;
use crate::webhooks::MessageStatus;

/// The `webhooks.max_concurrent_requests` values On-Premises offered.
pub const MAX_CONCURRENT_REQUESTS: [u64; 4] = [6, 12, 18, 24];

/// The form webhooks are delivered in (`webhooks.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    /// `{"statuses":[...]}` and `{"contacts":[...],"messages":[...]}`, as On-Premises sent them.
    #[default]
    OnPrem,
    /// `{"object":"whatsapp_business_account","entry":[...]}`, as the Cloud API sends them.
    Cloud,
}

impl WebhookFormat {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OnPrem => "onprem",
            Self::Cloud => "cloud",
        }
    }
}

/// The settings the pipeline acts on, with On-Premises defaults for what was never set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSettings {
    pub webhook_url: Option<String>,
    /// Signs webhook bodies (`X-Hub-Signature-256`) when set.
    pub webhook_secret: Option<String>,
    pub webhook_format: WebhookFormat,
    /// Sent back in the `hub.challenge` check a Cloud-form webhook URL gets when it is set.
    pub webhook_verify_token: Option<String>,
    pub max_concurrent_requests: u32,
    pub callback_persist: bool,
    pub callback_backoff_delay_ms: u64,
    pub max_callback_backoff_delay_ms: u64,
    pub sent_status: bool,
    pub message_sent: bool,
    pub message_delivered: bool,
    pub message_read: bool,
    pub pass_through: bool,
}

impl Default for AppSettings {
    fn default() -> Self {
        Self::from_document(&Value::Object(Map::new()))
    }
}

impl AppSettings {
    pub fn from_document(doc: &Value) -> Self {
        let get = |path: &[&str]| path.iter().try_fold(doc, |v, key| v.get(*key));
        let flag =
            |path: &[&str], default: bool| get(path).and_then(Value::as_bool).unwrap_or(default);
        let number =
            |path: &[&str], default: u64| get(path).and_then(Value::as_u64).unwrap_or(default);
        let text = |path: &[&str]| {
            get(path).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
        };
        Self {
            webhook_url: text(&["webhooks", "url"]),
            webhook_secret: text(&["webhooks", "secret"]),
            webhook_format: match text(&["webhooks", "format"]).as_deref() {
                Some("cloud") => WebhookFormat::Cloud,
                _ => WebhookFormat::OnPrem,
            },
            webhook_verify_token: text(&["webhooks", "verify_token"]),
            max_concurrent_requests: u32::try_from(number(
                &["webhooks", "max_concurrent_requests"],
                6,
            ))
            .unwrap_or(6),
            callback_persist: flag(&["callback_persist"], true),
            callback_backoff_delay_ms: number(&["callback_backoff_delay_ms"], 3000),
            max_callback_backoff_delay_ms: number(&["max_callback_backoff_delay_ms"], 900_000),
            sent_status: flag(&["sent_status"], false),
            message_sent: flag(&["webhooks", "message", "sent"], false),
            message_delivered: flag(&["webhooks", "message", "delivered"], true),
            message_read: flag(&["webhooks", "message", "read"], true),
            pass_through: flag(&["pass_through"], false),
        }
    }

    /// Whether a status callback of this kind is sent. `failed` always is.
    pub fn emits(&self, status: MessageStatus) -> bool {
        match status {
            MessageStatus::Queued => false,
            MessageStatus::Sent => self.sent_status || self.message_sent,
            MessageStatus::Delivered => self.message_delivered,
            MessageStatus::Read => self.message_read,
            MessageStatus::Failed => true,
        }
    }

    /// The delay before retry number `failures` of a callback: linear steps of
    /// `callback_backoff_delay_ms`, capped at `max_callback_backoff_delay_ms` (On-Premises).
    pub fn callback_retry_delay_ms(&self, failures: u32) -> u64 {
        self.callback_backoff_delay_ms
            .saturating_mul(u64::from(failures.max(1)))
            .min(self.max_callback_backoff_delay_ms)
    }
}

/// The `GET` answer's `application` object: defaults, overlaid with what was set. The webhook
/// secret and verify token are never shown.
pub fn view(doc: &Value) -> Value {
    let s = AppSettings::from_document(doc);
    let mut view = json!({
        "callback_persist": s.callback_persist,
        "callback_backoff_delay_ms": s.callback_backoff_delay_ms.to_string(),
        "max_callback_backoff_delay_ms": s.max_callback_backoff_delay_ms.to_string(),
        "pass_through": s.pass_through,
        "sent_status": s.emits(MessageStatus::Sent),
        "webhooks": {
            "url": s.webhook_url.as_deref().map(masked_password).unwrap_or_default(),
            "format": s.webhook_format.as_str(),
            "max_concurrent_requests": s.max_concurrent_requests,
            "message": {"sent": s.emits(MessageStatus::Sent), "delivered": s.message_delivered, "read": s.message_read},
        },
    });
    merge_unknown(&mut view, doc);
    if let Some(webhooks) = view.get_mut("webhooks").and_then(Value::as_object_mut) {
        webhooks.remove("secret");
        webhooks.remove("verify_token");
    }
    view
}

/// Copies keys of `doc` that `view` does not have (the fields kept as given).
fn merge_unknown(view: &mut Value, doc: &Value) {
    let (Some(view), Some(doc)) = (view.as_object_mut(), doc.as_object()) else { return };
    for (key, value) in doc {
        match view.get_mut(key) {
            Some(existing) if existing.is_object() => merge_unknown(existing, value),
            Some(_) => {}
            None => {
                view.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Applies a `PATCH` body to the stored document: only the fields given change; `null` resets
/// a field to its default. Every known field is validated, and the first bad one is named.
///
/// `sent_status` (On-Premises' older name) and `webhooks.message.sent` are one setting under
/// two names: a PATCH of either sets both, so a GET never shows them disagreeing. Fields
/// Premise does not use are kept, up to [`MAX_DOCUMENT_BYTES`] for the whole document.
pub fn apply_patch(doc: &Value, patch: &Value) -> Result<Value, Rejection> {
    let patch = patch
        .as_object()
        .ok_or_else(|| Rejection::invalid("settings", "expected a JSON object"))?;
    let mut doc = doc.as_object().cloned().unwrap_or_default();
    merge(&mut doc, patch, "")?;
    let sent = patch.get("webhooks").and_then(|w| w.get("message")).and_then(|m| m.get("sent"));
    match sent.or_else(|| patch.get("sent_status")) {
        None => {}
        Some(Value::Null) => {
            doc.remove("sent_status");
            let message = doc.get_mut("webhooks").and_then(|w| w.get_mut("message"));
            if let Some(message) = message.and_then(Value::as_object_mut) {
                message.remove("sent");
            }
        }
        Some(given) => {
            let sent = Value::Bool(boolean("webhooks.message.sent", given)?);
            doc.insert("sent_status".into(), sent.clone());
            let webhooks = doc.entry("webhooks").or_insert_with(|| json!({}));
            if let Some(webhooks) = webhooks.as_object_mut() {
                let message = webhooks.entry("message").or_insert_with(|| json!({}));
                if let Some(message) = message.as_object_mut() {
                    message.insert("sent".into(), sent);
                }
            }
        }
    }
    let doc = Value::Object(doc);
    if doc.to_string().len() > MAX_DOCUMENT_BYTES {
        return Err(Rejection::invalid(
            "settings",
            format!("the settings would be larger than {} KB", MAX_DOCUMENT_BYTES / 1024),
        ));
    }
    Ok(doc)
}

/// `url` with the password of its user information (`https://user:password@host/`) shown as
/// `***`: like `webhooks.secret`, write-only.
pub fn masked_password(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
    let authority_end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    let Some(at) = url[start..authority_end].rfind('@').map(|i| start + i) else {
        return url.to_owned();
    };
    match url[start..at].find(':').map(|i| start + i) {
        Some(colon) => format!("{}:***{}", &url[..colon], &url[at..]),
        None => url.to_owned(),
    }
}

/// The largest application settings document kept (a few hundred bytes in use).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

fn merge(
    doc: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    prefix: &str,
) -> Result<(), Rejection> {
    for (key, value) in patch {
        let path = format!("{prefix}{key}");
        if value.is_null() {
            doc.remove(key);
            continue;
        }
        match (normalise(&path, value)?, doc.get_mut(key)) {
            (Value::Object(inner), Some(Value::Object(existing))) => {
                merge(existing, &inner, &format!("{path}."))?;
            }
            (Value::Object(inner), _) => {
                let mut fresh = Map::new();
                merge(&mut fresh, &inner, &format!("{path}."))?;
                doc.insert(key.clone(), Value::Object(fresh));
            }
            (normalised, _) => {
                doc.insert(key.clone(), normalised);
            }
        }
    }
    Ok(())
}

/// Validates a known field and returns it in stored form; unknown fields pass unchanged.
fn normalise(path: &str, value: &Value) -> Result<Value, Rejection> {
    match path {
        "callback_persist"
        | "sent_status"
        | "pass_through"
        | "webhooks.message.sent"
        | "webhooks.message.delivered"
        | "webhooks.message.read" => boolean(path, value).map(Value::Bool),
        "callback_backoff_delay_ms" | "max_callback_backoff_delay_ms" => {
            let ms = integer(path, value)?;
            if !(1..=86_400_000).contains(&ms) {
                return Err(Rejection::invalid(
                    path,
                    "must be between 1 and 86400000 milliseconds",
                ));
            }
            Ok(json!(ms))
        }
        "webhooks.max_concurrent_requests" => {
            let n = integer(path, value)?;
            if !MAX_CONCURRENT_REQUESTS.contains(&n) {
                return Err(Rejection::invalid(path, "must be one of 6, 12, 18, 24"));
            }
            Ok(json!(n))
        }
        "webhooks.url" => {
            let url = string(path, value)?;
            if !url.is_empty() && !is_http_url(url) {
                return Err(Rejection::invalid(
                    path,
                    format!("'{url}' is not an http:// or https:// URL that can be requested"),
                ));
            }
            Ok(json!(url))
        }
        "webhooks.secret" | "webhooks.verify_token" => string(path, value).map(|s| json!(s)),
        "webhooks.format" => match string(path, value)? {
            format @ ("onprem" | "cloud") => Ok(json!(format)),
            other => Err(Rejection::invalid(path, format!("'{other}' is not onprem or cloud"))),
        },
        "webhooks" | "webhooks.message" => match value {
            Value::Object(_) => Ok(value.clone()),
            other => {
                Err(Rejection::invalid(path, format!("expected an object, got {}", kind(other))))
            }
        },
        _ => Ok(value.clone()),
    }
}

fn boolean(path: &str, value: &Value) -> Result<bool, Rejection> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
        other => Err(Rejection::invalid(path, format!("expected a boolean, got {}", kind(other)))),
    }
}

fn integer(path: &str, value: &Value) -> Result<u64, Rejection> {
    let parsed = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| {
        Rejection::invalid(path, format!("expected a non-negative integer, got {value}"))
    })
}

fn string<'a>(path: &str, value: &'a Value) -> Result<&'a str, Rejection> {
    value
        .as_str()
        .ok_or_else(|| Rejection::invalid(path, format!("expected a string, got {}", kind(value))))
}

/// An `http://` or `https://` URL that the webhook client can request: it parses as the
/// client will parse it (a port that is not a number, a host with characters no host has, are
/// refused here rather than failing every delivery later), with a host.
pub fn is_http_url(url: &str) -> bool {
    let lowered = url.to_ascii_lowercase();
    if !(lowered.starts_with("http://") || lowered.starts_with("https://")) {
        return false;
    }
    match url::Url::parse(url) {
        Ok(parsed) => {
            matches!(parsed.scheme(), "http" | "https")
                && parsed.host_str().is_some_and(|h| !h.is_empty())
                && !url.contains(char::is_whitespace)
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_has_one_truth_under_two_names() {
        let doc =
            apply_patch(&json!({}), &json!({"webhooks": {"message": {"sent": true}}})).unwrap();
        let shown = view(&doc);
        assert_eq!(
            (&shown["sent_status"], &shown["webhooks"]["message"]["sent"]),
            (&json!(true), &json!(true))
        );
        let doc = apply_patch(&doc, &json!({"sent_status": false})).unwrap();
        let shown = view(&doc);
        assert_eq!(
            (&shown["sent_status"], &shown["webhooks"]["message"]["sent"]),
            (&json!(false), &json!(false))
        );
        assert!(!AppSettings::from_document(&doc).emits(MessageStatus::Sent));
        let doc = apply_patch(&doc, &json!({"sent_status": "true"})).unwrap();
        assert_eq!(view(&doc)["webhooks"]["message"]["sent"], json!(true));
        let doc = apply_patch(&doc, &json!({"webhooks": {"message": {"sent": null}}})).unwrap();
        assert_eq!(
            (&view(&doc)["sent_status"], &view(&doc)["webhooks"]["message"]["sent"]),
            (&json!(false), &json!(false))
        );
    }

    #[test]
    fn a_webhook_urls_password_is_not_shown() {
        assert_eq!(
            masked_password("https://u:pw@h.example/x?a=b@c"),
            "https://u:***@h.example/x?a=b@c"
        );
        assert_eq!(masked_password("https://h.example/x@y"), "https://h.example/x@y");
        assert_eq!(masked_password("https://token@h.example/"), "https://token@h.example/");
        let doc = apply_patch(&json!({}), &json!({"webhooks": {"url": "https://u:pw@h.example/"}}))
            .unwrap();
        assert_eq!(view(&doc)["webhooks"]["url"], "https://u:***@h.example/");
        assert_eq!(
            AppSettings::from_document(&doc).webhook_url.as_deref(),
            Some("https://u:pw@h.example/")
        );
    }

    #[test]
    fn the_document_is_capped() {
        let big = "x".repeat(40 * 1024);
        let doc = apply_patch(&json!({}), &json!({"mine": big})).unwrap();
        assert!(apply_patch(&doc, &json!({"more": big})).is_err(), "80 KB of unknown fields");
    }

    #[test]
    fn webhook_urls_must_be_requestable() {
        for bad in [
            "http://127.0.0.1:9,",
            "http://",
            "ftp://example.com",
            "http://exa mple.com/",
            "http://[::1/x",
            "example.com",
        ] {
            let refused = apply_patch(&json!({}), &json!({"webhooks": {"url": bad}}));
            assert!(refused.is_err(), "{bad}");
        }
        for good in [
            "http://127.0.0.1:9/",
            "https://example.com/hook?x=1",
            "HTTPS://Example.com",
            "http://[::1]:8080/a",
        ] {
            assert!(apply_patch(&json!({}), &json!({"webhooks": {"url": good}})).is_ok(), "{good}");
        }
    }

    #[test]
    fn defaults_are_onprem_defaults() {
        let s = AppSettings::default();
        assert_eq!((s.callback_backoff_delay_ms, s.max_callback_backoff_delay_ms), (3000, 900_000));
        assert!(s.callback_persist && !s.sent_status && s.webhook_url.is_none());
        assert_eq!(s.max_concurrent_requests, 6);
        assert!(
            !s.emits(MessageStatus::Sent)
                && s.emits(MessageStatus::Delivered)
                && s.emits(MessageStatus::Failed)
        );
        assert_eq!((s.callback_retry_delay_ms(1), s.callback_retry_delay_ms(2)), (3000, 6000));
        assert_eq!(s.callback_retry_delay_ms(10_000), 900_000);
    }

    #[test]
    fn patch_changes_only_what_is_given_and_keeps_unknown_fields() {
        let doc =
            apply_patch(&json!({}), &json!({"webhooks": {"url": "https://example.com/hook"}}))
                .unwrap();
        let doc = apply_patch(
            &doc,
            &json!({"callback_backoff_delay_ms": "250", "sent_status": true, "on_call_pager": "123",
                     "media": {"auto_download": ["image"]}, "webhooks": {"max_concurrent_requests": 12}}),
        )
        .unwrap();
        let s = AppSettings::from_document(&doc);
        assert_eq!(s.webhook_url.as_deref(), Some("https://example.com/hook"));
        assert_eq!(
            (s.callback_backoff_delay_ms, s.max_concurrent_requests, s.sent_status),
            (250, 12, true)
        );
        let shown = view(&doc);
        assert_eq!(shown["on_call_pager"], "123");
        assert_eq!(shown["media"]["auto_download"], json!(["image"]));
        assert_eq!(shown["callback_backoff_delay_ms"], "250");
        // An empty URL removes the webhook, as Meta's "Delete-Webhooks" request does.
        let doc = apply_patch(&doc, &json!({"webhooks": {"url": ""}})).unwrap();
        assert_eq!(AppSettings::from_document(&doc).webhook_url, None);
    }

    #[test]
    fn bad_values_name_the_field() {
        let cases = [
            (json!({"callback_backoff_delay_ms": "soon"}), "callback_backoff_delay_ms"),
            (json!({"callback_persist": 3}), "callback_persist"),
            (json!({"webhooks": {"url": "ftp://x"}}), "webhooks.url"),
            (
                json!({"webhooks": {"max_concurrent_requests": 7}}),
                "webhooks.max_concurrent_requests",
            ),
            (json!({"webhooks": {"message": {"read": "yes"}}}), "webhooks.message.read"),
            (json!({"webhooks": "https://x"}), "webhooks"),
        ];
        for (patch, field) in cases {
            let err = apply_patch(&json!({}), &patch).unwrap_err();
            assert_eq!(err.code, crate::ErrorCode::ParameterValueInvalid);
            assert!(err.details.starts_with(&format!("{field}:")), "{patch}: {}", err.details);
        }
    }
}
