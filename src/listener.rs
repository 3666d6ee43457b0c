//! Where connections come from: plain TCP, or TLS (rustls with the `ring` provider) when
//! `server.tls_cert` and `server.tls_key` are set, so `https://` integrations work without a
//! proxy. Without them, once a certificate is uploaded (`POST /v1/certificates/external`) a
//! connection whose first byte starts a TLS handshake gets TLS, and the others plain HTTP. A task accepts TCP connections and completes each TLS handshake on its own, so a
//! slow client cannot hold up the others; the server sees one kind of connection either way,
//! each under the [`crate::connection`] limits (timeouts, and a cap on how many are open).
//! When the server stops listening (graceful shutdown) the task stops accepting.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::certificates::ServerCerts;
use crate::connection::{Guarded, Limits, Slots};

/// A TLS handshake not finished within this is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// How connections are secured: always TLS (`required`, with certificate files), or TLS for
/// those that start a handshake once [`ServerCerts`] has a certificate.
#[derive(Clone)]
pub struct Tls {
    pub acceptor: TlsAcceptor,
    pub certs: Arc<ServerCerts>,
    pub required: bool,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("required", &self.required).finish_non_exhaustive()
    }
}

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
    /// Serves `tcp`, through TLS as `tls` says, each connection under `limits`.
    pub fn new(tcp: TcpListener, tls: Tls, limits: Limits) -> io::Result<Self> {
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
                if !tls.required && !tls.certs.any() {
                    let stream = Guarded::new(stream, limits, slot);
                    if tx.send((Box::new(stream) as Box<dyn Io>, peer)).await.is_err() {
                        return;
                    }
                    continue;
                }
                tokio::spawn(secure(stream, peer, tls.clone(), limits, slot, tx.clone()));
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

/// Completes the TLS handshake of a connection, or hands it on as it is when TLS is optional
/// and its first byte does not start a handshake.
async fn secure(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Tls,
    limits: Limits,
    slot: tokio::sync::OwnedSemaphorePermit,
    tx: mpsc::Sender<(Box<dyn Io>, SocketAddr)>,
) {
    if !tls.required {
        let mut first = [0u8; 1];
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
            Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => {}
            Ok(Ok(_)) => {
                let stream = Guarded::new(stream, limits, slot);
                let _ = tx.send((Box::new(stream) as Box<dyn Io>, peer)).await;
                return;
            }
            Ok(Err(_)) | Err(_) => return,
        }
    }
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor.accept(stream)).await {
        Ok(Ok(stream)) => {
            let stream = Guarded::new(stream, limits, slot);
            let _ = tx.send((Box::new(stream) as Box<dyn Io>, peer)).await;
        }
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}
