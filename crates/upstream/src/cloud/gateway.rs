//! The connection to the Cloud API as `/v1/health` reports it: connected while calls are
//! answered, disconnected (and why) while they are not or the token is refused. Kept up to date
//! by every call and by a periodic look at the phone number, which also gives its name and
//! quality rating.

use std::sync::Mutex;

use serde::Deserialize;

use super::errors::{CloudError, is_token_error};
use crate::Gateway;

/// What `GET /{phone-number-id}` says of the number.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
pub struct PhoneNumber {
    #[serde(default)]
    pub display_phone_number: Option<String>,
    #[serde(default)]
    pub verified_name: Option<String>,
    #[serde(default)]
    pub quality_rating: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct GatewayState {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Why sends cannot go through; `None` while they can.
    down: Option<String>,
    phone: Option<PhoneNumber>,
}

impl GatewayState {
    /// A call was answered: the connection and the token are good.
    pub(crate) fn answered(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.down = None;
        }
    }

    /// A call failed; the connection is down if no call can go through (no answer, the token
    /// refused, Cloud failing). An error about one message says nothing about the connection.
    pub(crate) fn failed(&self, error: &CloudError) {
        let down = match error {
            CloudError::Transport(why) => Some(format!("cannot reach the Cloud API: {why}")),
            CloudError::Http { status, error: Some(graph), .. } if is_token_error(graph.code) => {
                Some(format!(
                    "the Cloud API refused the access token (HTTP {status}, code {}: {}); \
                     messages are kept and retried: set a valid cloud.access_token and restart",
                    graph.code, graph.message
                ))
            }
            CloudError::Http { status: 401 | 403, error: None, .. } => Some(
                "the Cloud API refused the access token; messages are kept and retried: \
                 set a valid cloud.access_token and restart"
                    .to_owned(),
            ),
            CloudError::Http { status, .. } if *status >= 500 => {
                Some(format!("the Cloud API is failing: {error}"))
            }
            CloudError::Http { .. } | CloudError::Refused(_) => None,
        };
        if let (Some(down), Ok(mut inner)) = (down, self.inner.lock()) {
            inner.down = Some(down);
        }
    }

    pub(crate) fn gateway(&self) -> Gateway {
        match self.inner.lock().ok().and_then(|inner| inner.down.clone()) {
            Some(why) => Gateway::Disconnected(why),
            None => Gateway::Connected,
        }
    }

    pub(crate) fn phone(&self) -> Option<PhoneNumber> {
        self.inner.lock().ok().and_then(|inner| inner.phone.clone())
    }

    pub(crate) fn checked(&self, phone: PhoneNumber) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.phone = Some(phone);
        }
    }
}
