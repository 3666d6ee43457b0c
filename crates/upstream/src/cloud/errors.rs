//! Cloud API errors: what a failed call came back with ([`CloudError`], Cloud's error object
//! [`GraphError`]), and what that means for a message: retry it (and maybe hold every send a
//! while), or fail it for good with the On-Premises code of the error (`docs/onprem-api.md` section
//! 12.1).

use std::fmt;
use std::time::Duration;

use premise_wire::StatusError;
use serde::Deserialize;

/// What a failed Cloud call came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudError {
    /// No answer: a timeout, a refused or broken connection.
    Transport(String),
    /// An answer other than 2xx, with Cloud's error object when the body held one.
    Http { status: u16, retry_after: Option<Duration>, error: Option<GraphError> },
    /// Not asked at all: a media URL Cloud gave that is not one of Meta's hosts (the token
    /// goes to none other), or not over https.
    Refused(String),
}

/// Cloud's error object: `{"error":{"message","type","code","error_subcode","error_data":
/// {"details"},"fbtrace_id"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GraphError {
    pub code: i64,
    pub subcode: Option<i64>,
    /// `message`, e.g. "(#131026) Message Undeliverable".
    pub message: String,
    /// `error_data.details`, what Meta says to build logic on (with `code`).
    pub details: Option<String>,
}

impl GraphError {
    /// The message without its "(#code) " prefix: the error's title.
    pub fn title(&self) -> String {
        let message = self.message.trim();
        match message.strip_prefix("(#").and_then(|rest| rest.split_once(") ")) {
            Some((_, title)) if !title.is_empty() => title.to_owned(),
            _ => message.to_owned(),
        }
    }

    pub(crate) fn parse(body: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Envelope {
            error: Inner,
        }
        #[derive(Deserialize)]
        struct Inner {
            code: i64,
            #[serde(default)]
            error_subcode: Option<i64>,
            #[serde(default)]
            message: String,
            #[serde(default)]
            error_data: Option<ErrorData>,
        }
        #[derive(Deserialize)]
        struct ErrorData {
            #[serde(default)]
            details: Option<String>,
        }
        let envelope: Envelope = serde_json::from_slice(body).ok()?;
        Some(Self {
            code: envelope.error.code,
            subcode: envelope.error.error_subcode,
            message: envelope.error.message,
            details: envelope.error.error_data.and_then(|d| d.details),
        })
    }
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(why) => write!(f, "no answer from the Cloud API: {why}"),
            Self::Http { status, error: Some(error), .. } => {
                write!(
                    f,
                    "the Cloud API answered {status}, code {}: {}",
                    error.code, error.message
                )?;
                if let Some(details) = &error.details {
                    write!(f, " ({details})")?;
                }
                Ok(())
            }
            Self::Http { status, error: None, .. } => {
                write!(f, "the Cloud API answered {status} without an error object")
            }
            Self::Refused(why) => write!(f, "not asked of the Cloud API: {why}"),
        }
    }
}

impl std::error::Error for CloudError {}

/// What to do with a message Cloud did not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Try this message again later (its recipient waits; others go on). `retry_after`: not
    /// before this. `pause_all`: hold every send this long, the whole number being throttled or
    /// the token refused.
    Retry { why: String, retry_after: Option<Duration>, pause_all: Option<Duration> },
    /// Cloud refused it for good: the message fails with this error.
    Fail(StatusError),
}

/// How long every send is held when Cloud throttles the number without saying for how long.
const THROTTLE_PAUSE: Duration = Duration::from_secs(1);
/// How long every send is held after the token was refused (it will not get better by itself;
/// the periodic phone number check and these retries notice a fix).
const TOKEN_PAUSE: Duration = Duration::from_secs(10);

/// Cloud codes worth retrying: unknown or service errors, throttling, a number being upgraded,
/// the server temporarily unavailable.
const TRANSIENT: [i64; 10] = [1, 2, 4, 80007, 130429, 131000, 131016, 131056, 131057, 133004];
/// The whole number is over its rate: every send waits, not just this recipient's.
const NUMBER_THROTTLED: [i64; 3] = [4, 80007, 130429];

/// An invalid or expired token, or a missing permission: fixed by the operator, never by the
/// message. Messages are kept.
pub fn is_token_error(code: i64) -> bool {
    matches!(code, 0 | 10 | 190 | 200..=299)
}

pub fn classify(error: &CloudError) -> Verdict {
    let why = error.to_string();
    match error {
        CloudError::Transport(_) => Verdict::Retry { why, retry_after: None, pause_all: None },
        CloudError::Refused(_) => Verdict::Fail(StatusError {
            code: 131052,
            title: "Media download error".to_owned(),
            details: Some(why),
        }),
        CloudError::Http { status, retry_after, error: graph } => {
            let code = graph.as_ref().map(|g| g.code);
            let throttled = *status == 429 || code.is_some_and(|c| NUMBER_THROTTLED.contains(&c));
            if throttled {
                let pause = retry_after.unwrap_or(THROTTLE_PAUSE);
                return Verdict::Retry { why, retry_after: Some(pause), pause_all: Some(pause) };
            }
            if code.is_some_and(is_token_error) || (graph.is_none() && matches!(status, 401 | 403))
            {
                let pause = retry_after.unwrap_or(TOKEN_PAUSE).max(TOKEN_PAUSE);
                return Verdict::Retry { why, retry_after: Some(pause), pause_all: Some(pause) };
            }
            match graph {
                Some(graph) if *status < 500 && !TRANSIENT.contains(&graph.code) => {
                    Verdict::Fail(failure(graph))
                }
                // A 5xx, a transient code, or an answer that is not Cloud's (a proxy's error
                // page): the message is kept and tried again.
                _ => Verdict::Retry { why, retry_after: *retry_after, pause_all: None },
            }
        }
    }
}

/// The `failed` status error for a Cloud error: the On-Premises code, Cloud's title and
/// details.
pub fn failure(graph: &GraphError) -> StatusError {
    status_error(graph.code, graph.title(), graph.details.clone())
}

/// An error as an On-Premises `statuses[].errors[]` entry.
pub fn status_error(cloud_code: i64, title: String, details: Option<String>) -> StatusError {
    StatusError { code: onprem_code(cloud_code), title, details }
}

/// The On-Premises code of a Cloud code; an unmapped code keeps Cloud's.
pub fn onprem_code(cloud: i64) -> u32 {
    premise_wire::cloud_codes::onprem_code(cloud)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cloud_errors() {
        let body =
            br#"{"error":{"message":"(#131026) Message Undeliverable","type":"OAuthException",
            "code":131026,"error_data":{"messaging_product":"whatsapp","details":"not on WhatsApp"},
            "fbtrace_id":"A1"}}"#;
        let error = GraphError::parse(body).unwrap();
        assert_eq!((error.code, error.title()), (131026, "Message Undeliverable".to_owned()));
        assert_eq!(error.details.as_deref(), Some("not on WhatsApp"));
        assert_eq!(GraphError::parse(b"<html>bad gateway</html>"), None);
        let plain =
            GraphError { message: "Invalid OAuth access token".into(), ..GraphError::default() };
        assert_eq!(plain.title(), "Invalid OAuth access token");
    }

    fn http(status: u16, code: i64, retry_after: Option<u64>) -> CloudError {
        CloudError::Http {
            status,
            retry_after: retry_after.map(Duration::from_secs),
            error: Some(GraphError {
                code,
                message: format!("(#{code}) Something"),
                details: Some("what Cloud said".into()),
                ..GraphError::default()
            }),
        }
    }

    #[test]
    fn refusals_fail_with_the_on_premises_code() {
        for (cloud, onprem) in [
            (131026, 1026),
            (131047, 470),
            (131048, 471),
            (132000, 2000),
            (132001, 2001),
            (131051, 501),
            (131008, 1008),
            (131009, 1009),
            (368, 368),
        ] {
            let Verdict::Fail(error) = classify(&http(400, cloud, None)) else {
                panic!("{cloud} should fail the message");
            };
            assert_eq!(error.code, onprem, "{cloud}");
            assert_eq!(error.title, "Something");
            assert_eq!(error.details.as_deref(), Some("what Cloud said"));
        }
    }

    #[test]
    fn throttling_and_outages_are_retried() {
        for code in TRANSIENT {
            assert!(matches!(classify(&http(400, code, None)), Verdict::Retry { .. }), "{code}");
        }
        let Verdict::Retry { retry_after, pause_all, .. } = classify(&http(400, 130429, Some(3)))
        else {
            panic!()
        };
        assert_eq!((retry_after, pause_all), (Some(Duration::from_secs(3)), retry_after));
        let Verdict::Retry { pause_all, .. } = classify(&http(400, 131056, None)) else { panic!() };
        assert_eq!(pause_all, None, "a pair rate limit holds only that recipient");
        let bare = CloudError::Http { status: 502, retry_after: None, error: None };
        assert!(matches!(classify(&bare), Verdict::Retry { pause_all: None, .. }));
        let status_429 = CloudError::Http { status: 429, retry_after: None, error: None };
        assert!(matches!(classify(&status_429), Verdict::Retry { pause_all: Some(_), .. }));
        let transport = CloudError::Transport("connection refused".into());
        assert!(matches!(classify(&transport), Verdict::Retry { .. }));
    }

    #[test]
    fn a_refused_token_keeps_messages() {
        for code in [190, 0, 10, 200, 299] {
            let Verdict::Retry { pause_all, .. } = classify(&http(401, code, None)) else {
                panic!("{code} should keep the message");
            };
            assert!(pause_all.is_some());
        }
        assert!(matches!(classify(&http(400, 300, None)), Verdict::Fail(_)));
    }
}
