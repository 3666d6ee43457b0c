//! The certificate the API is served with over HTTPS (`POST /v1/certificates/external`).
//!
//! [`ServerCerts`] is the listener's certificate resolver: the certificate of the
//! `server.tls_cert`/`server.tls_key` files if set, replaced by one uploaded as a PEM bundle
//! (the private key, the certificate, and its CA chain), as On-Premises took it. The bundle is
//! kept in the store ([`EXTERNAL_DOCUMENT`]); each replica installs it when it changes (the
//! replica that took the upload at once, the others within [`RELOAD_EVERY`]), so new
//! connections get it everywhere without a restart. Without certificate files, the listener
//! answers TLS handshakes on the same port once a certificate is uploaded, and plain HTTP as
//! before.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use premise_store::Store;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

/// The settings document that keeps the uploaded bundle (`{"pem"}`).
pub const EXTERNAL_DOCUMENT: &str = "certificates.external";
/// How often a replica looks for a bundle uploaded to another.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// A checked bundle: what to serve, and the CA chain as PEM (`GET .../external/ca`).
#[derive(Debug)]
pub struct Bundle {
    pub key: Arc<CertifiedKey>,
    pub ca_pem: String,
}

/// What is wrong with an uploaded certificate bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read the certificates: {0}")]
    Unreadable(rustls::pki_types::pem::Error),
    #[error("no private key (BEGIN PRIVATE KEY, RSA or EC) in the bundle")]
    NoKey,
    #[error("no certificate in the bundle")]
    NoCertificate,
    #[error("no CA certificate after the server's certificate")]
    NoCa,
    #[error("a CA certificate is not valid: {0}")]
    InvalidCa(rustls::Error),
    #[error("the key does not go with the first certificate: {0}")]
    KeyMismatch(rustls::Error),
}

/// Checks a PEM bundle: a private key, the certificate it belongs to (first), and at least one
/// CA certificate after it. The refusal says what is wrong.
pub fn parse_bundle(pem: &str) -> Result<Bundle, BundleError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(BundleError::Unreadable)?;
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| BundleError::NoKey)?;
    let [_leaf, chain @ ..] = certs.as_slice() else {
        return Err(BundleError::NoCertificate);
    };
    if chain.is_empty() {
        return Err(BundleError::NoCa);
    }
    let mut roots = rustls::RootCertStore::empty();
    for ca in chain {
        roots.add(ca.clone()).map_err(BundleError::InvalidCa)?;
    }
    let provider = rustls::crypto::ring::default_provider();
    let key =
        CertifiedKey::from_der(certs.clone(), key, &provider).map_err(BundleError::KeyMismatch)?;
    let ca_pem = chain.iter().map(|der| pem_of(der)).collect();
    Ok(Bundle { key: Arc::new(key), ca_pem })
}

fn pem_of(der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> =
        body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64")).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}

/// What the listener serves: the uploaded certificate, else the configured one.
#[derive(Debug, Default)]
pub struct ServerCerts {
    configured: Option<Arc<CertifiedKey>>,
    uploaded: RwLock<Option<(String, Arc<CertifiedKey>)>>,
}

impl ServerCerts {
    /// With the certificate of `server.tls_cert` and `server.tls_key`, if set.
    pub fn new(files: Option<(&str, &str)>) -> anyhow::Result<Arc<Self>> {
        let configured = match files {
            None => None,
            Some((cert, key)) => Some(Arc::new(load_files(cert, key)?)),
        };
        Ok(Arc::new(Self { configured, uploaded: RwLock::default() }))
    }

    /// Whether there is a certificate to serve.
    pub fn any(&self) -> bool {
        self.configured.is_some() || self.uploaded.read().expect("certs lock").is_some()
    }

    /// Serves `pem` (a bundle [`parse_bundle`] accepts) from now on, or the configured
    /// certificate again with `None`. Unchanged text is not parsed again.
    pub fn install(&self, pem: Option<&str>) -> Result<(), BundleError> {
        let current = self.uploaded.read().expect("certs lock").as_ref().map(|(p, _)| p.clone());
        if current.as_deref() == pem {
            return Ok(());
        }
        let next = match pem {
            None => None,
            Some(pem) => Some((pem.to_owned(), parse_bundle(pem)?.key)),
        };
        *self.uploaded.write().expect("certs lock") = next;
        tracing::info!(uploaded = pem.is_some(), "HTTPS certificate installed");
        Ok(())
    }

    /// The TLS acceptor that serves whatever is installed at each handshake.
    pub fn acceptor(self: &Arc<Self>) -> anyhow::Result<TlsAcceptor> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// Installs the bundle kept in the store whenever it changes, until `stop`.
    pub async fn follow(self: Arc<Self>, store: Arc<dyn Store>, stop: CancellationToken) {
        let reloading = async move {
            loop {
                match store.document(EXTERNAL_DOCUMENT).await {
                    Ok(document) => {
                        let pem = document
                            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                            .and_then(|doc| doc["pem"].as_str().map(str::to_owned));
                        if let Err(why) = self.install(pem.as_deref()) {
                            tracing::warn!(%why, "the stored HTTPS certificate cannot be served");
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "cannot read the HTTPS certificate"),
                }
                tokio::time::sleep(RELOAD_EVERY).await;
            }
        };
        tokio::select! {
            () = reloading => {}
            () = stop.cancelled() => {}
        }
    }
}

impl ResolvesServerCert for ServerCerts {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let uploaded = self.uploaded.read().expect("certs lock").as_ref().map(|(_, k)| k.clone());
        uploaded.or_else(|| self.configured.clone())
    }
}

fn load_files(cert: &str, key: &str) -> anyhow::Result<CertifiedKey> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("server.tls_cert: cannot read certificates from {cert}"))?;
    anyhow::ensure!(!certs.is_empty(), "server.tls_cert: no certificate in {cert}");
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("server.tls_key: cannot read a private key from {key}"))?;
    CertifiedKey::from_der(certs, key, &rustls::crypto::ring::default_provider())
        .context("server.tls_key does not match server.tls_cert, or is not supported")
}
