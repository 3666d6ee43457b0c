//! The HTTP client webhooks are POSTed with, and the CA it trusts besides the public ones
//! (`/v1/certificates/webhooks/ca`): an `https` webhook URL whose certificate a private CA
//! signed is delivered once that CA is uploaded. The CA is kept in the store
//! ([`WEBHOOKS_CA_DOCUMENT`]); each process rebuilds its client when it changes (the replica
//! that took the upload at once, the others within [`RELOAD_EVERY`]).

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use premise_store::Store;

/// The settings document that keeps the webhooks' CA (`{"pem"}`).
pub const WEBHOOKS_CA_DOCUMENT: &str = "certificates.webhooks_ca";
/// How often a process looks for a CA uploaded to another replica.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// The webhook client, shared by every dispatcher of the process. Cheap to clone.
#[derive(Debug, Clone)]
pub struct WebhookHttp(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    timeout: Duration,
    /// The CA trusted now (as PEM) and the client that trusts it.
    current: RwLock<(Option<String>, reqwest::Client)>,
    checked: Mutex<Option<Instant>>,
}

impl WebhookHttp {
    pub fn new(timeout: Duration) -> Self {
        let client = build(timeout, None).expect("the webhook HTTP client builds");
        Self(Arc::new(Inner {
            timeout,
            current: RwLock::new((None, client)),
            checked: Mutex::new(None),
        }))
    }

    /// The client to POST with now.
    pub fn client(&self) -> reqwest::Client {
        self.0.current.read().expect("webhook client lock").1.clone()
    }

    /// Trusts `ca` (PEM, one or more certificates) besides the public CAs, or only those with
    /// `None`; a CA that is not one is refused with the reason.
    pub fn trust(&self, ca: Option<&str>) -> Result<(), CaError> {
        if self.0.current.read().expect("webhook client lock").0.as_deref() == ca {
            return Ok(());
        }
        let client = build(self.0.timeout, ca)?;
        *self.0.current.write().expect("webhook client lock") = (ca.map(str::to_owned), client);
        tracing::info!(private_ca = ca.is_some(), "webhook client rebuilt");
        Ok(())
    }

    /// Trusts what the store keeps, looking no more often than every [`RELOAD_EVERY`].
    pub async fn refresh(&self, store: &Arc<dyn Store>) {
        {
            let mut checked = self.0.checked.lock().expect("webhook client lock");
            if checked.is_some_and(|at| at.elapsed() < RELOAD_EVERY) {
                return;
            }
            *checked = Some(Instant::now());
        }
        match store.document(WEBHOOKS_CA_DOCUMENT).await {
            Ok(document) => {
                let pem = document
                    .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                    .and_then(|doc| doc["pem"].as_str().map(str::to_owned));
                if let Err(why) = self.trust(pem.as_deref()) {
                    tracing::warn!(%why, "the stored webhook CA cannot be used");
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot read the webhook CA"),
        }
    }
}

/// Why a CA (PEM) cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot read the certificates: {0}")]
    Unreadable(reqwest::Error),
    #[error("no certificate (BEGIN CERTIFICATE) in it")]
    Empty,
    #[error("not a CA certificate a client can trust: {0}")]
    Untrusted(reqwest::Error),
}

/// Checks that `pem` holds at least one CA certificate a client can trust.
pub fn check_ca(pem: &str) -> Result<(), CaError> {
    build(Duration::from_secs(1), Some(pem)).map(drop)
}

fn build(timeout: Duration, ca: Option<&str>) -> Result<reqwest::Client, CaError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(concat!("Premise/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = ca {
        let certs =
            reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(CaError::Unreadable)?;
        if certs.is_empty() {
            return Err(CaError::Empty);
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(CaError::Untrusted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_certificates_are_trusted() {
        assert!(check_ca("not a certificate").is_err());
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(check_ca(garbage).is_err(), "a PEM block that is not X.509");
    }
}
