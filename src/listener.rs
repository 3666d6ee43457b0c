//! Where connections come from: plain TCP, or TLS (rustls with the `ring` provider) when
//! `server.tls_cert` and `server.tls_key` are set, so `https://` integrations work without a
//! proxy. A task accepts TCP connections and completes each TLS handshake on its own, so a
//! slow client cannot hold up the others; the server sees one kind of connection either way,
//! each under the [`crate::connection`] limits (timeouts, and a cap on how many are open).
//! When the server stops listening (graceful shutdown) the task stops accepting.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::connection::{Guarded, Limits, Slots};

/// A TLS handshake not finished within this is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Accepted connections, ready for HTTP.
pub struct Incoming {
    rx: mpsc::Receiver<(Box<dyn Io>, SocketAddr)>,
    local: SocketAddr,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming").field("local", &self.local).finish_non_exhaustive()
    }
}

impl Incoming {
    /// Serves `tcp`, through TLS if `tls` is given, each connection under `limits`.
    pub fn new(tcp: TcpListener, tls: Option<TlsAcceptor>, limits: Limits) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(128);
        let slots = Slots::new(&limits);
        tokio::spawn(async move {
            loop {
                // At the connection cap, stop accepting until one closes.
                let slot = tokio::select! {
                    slot = slots.take() => slot,
                    () = tx.closed() => return,
                };
                let (stream, peer) = tokio::select! {
                    accepted = tcp.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            // Out of file descriptors and the like: wait rather than spin.
                            tracing::warn!(error = %e, "cannot accept a connection");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    () = tx.closed() => return,
                };
                let _ = stream.set_nodelay(true);
                let Some(tls) = tls.clone() else {
                    let stream = Guarded::new(stream, limits, slot);
                    if tx.send((Box::new(stream) as Box<dyn Io>, peer)).await.is_err() {
                        return;
                    }
                    continue;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let stream = Guarded::new(stream, limits, slot);
                            let _ = tx.send((Box::new(stream) as Box<dyn Io>, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { rx, local })
    }
}

impl axum::serve::Listener for Incoming {
    type Io = Box<dyn Io>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(accepted) => accepted,
            // The accepting task only ends once this side is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The TLS acceptor for a PEM certificate chain and private key.
pub fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| {
            format!("server.tls_cert: cannot read certificates from {}", cert.display())
        })?;
    anyhow::ensure!(!certs.is_empty(), "server.tls_cert: no certificate in {}", cert.display());
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!("server.tls_key: cannot read a private key from {}", key.display())
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("server.tls_key does not match server.tls_cert, or is not supported")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
