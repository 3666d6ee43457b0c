//! Limiting failed logins per client (On-Premises `RL_MAX_WRONG_LOGINS`: 429 with 1015). The
//! count lives in the store, so the limit holds however the load balancer spreads the attempts.

use std::sync::Arc;

use premise_store::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct LoginThrottle {
    store: Arc<dyn Store>,
    max_failures: u32,
    window_secs: i64,
}

impl LoginThrottle {
    pub fn new(store: Arc<dyn Store>, max_failures: u32, window_secs: u64) -> Self {
        Self { store, max_failures, window_secs: i64::try_from(window_secs).unwrap_or(i64::MAX) }
    }

    /// Whether `client` has used up its failed attempts for the current window.
    pub async fn is_blocked(&self, client: &str, now: i64) -> Result<bool, StoreError> {
        Ok(self.store.login_failures(client, now, self.window_secs).await? >= self.max_failures)
    }

    pub async fn record_failure(&self, client: &str, now: i64) -> Result<(), StoreError> {
        let failures = self.store.record_login_failure(client, now, self.window_secs).await?;
        if failures == self.max_failures {
            tracing::warn!(
                client,
                failures,
                "blocking logins from this client until its window ends"
            );
        }
        Ok(())
    }

    pub async fn clear(&self, client: &str) -> Result<(), StoreError> {
        self.store.clear_login_failures(client).await
    }
}
