//! Limiting failed logins per client (On-Premises `RL_MAX_WRONG_LOGINS`: 429 with 1015). The
//! count lives in the store, so the limit holds however the load balancer spreads the attempts.
//!
//! Each attempt is counted *before* its password is checked, and the count cleared when the
//! password was right: so concurrent attempts cannot overshoot the limit (checking first and
//! counting after let a burst of 1,000 through 66 full password checks with a limit of 10).

use std::sync::Arc;
use std::time::Duration;

use premise_base::UnixMs;
use premise_store::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct LoginThrottle {
    store: Arc<dyn Store>,
    max_failures: u32,
    window: Duration,
}

impl LoginThrottle {
    pub fn new(store: Arc<dyn Store>, max_failures: u32, window_secs: u64) -> Self {
        Self { store, max_failures, window: Duration::from_secs(window_secs) }
    }

    /// Counts an attempt by `client` as failed until [`LoginThrottle::clear`] says otherwise;
    /// `false` if it is over the limit of the current window (check nothing then).
    pub async fn reserve(&self, client: &str, now: UnixMs) -> Result<bool, StoreError> {
        let attempts = self.store.record_login_failure(client, now, self.window).await?;
        if attempts == self.max_failures + 1 {
            tracing::warn!(
                client,
                failures = self.max_failures,
                "blocking logins from this client until its window ends"
            );
        }
        Ok(attempts <= self.max_failures)
    }

    /// The attempt succeeded: forget the client's failures.
    pub async fn clear(&self, client: &str) -> Result<(), StoreError> {
        self.store.clear_login_failures(client).await
    }
}
