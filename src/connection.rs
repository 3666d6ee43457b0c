//! Limits on every client connection, so slow or idle clients cannot hold the server's sockets:
//!
//! - a request's header block must arrive within `header_read_timeout` of its first byte
//!   (slowloris: a request line and a header, then nothing, or a byte now and then);
//! - a connection with no bytes either way for `idle_timeout` is closed (a keep-alive connection
//!   between requests, a stalled body);
//! - at most `max_connections` are open at once; beyond that the server stops accepting until
//!   one closes, and new clients wait in the kernel's backlog.
//!
//! hyper's own header timeout cannot tell the two timeouts apart (its clock also runs while a
//! keep-alive connection waits for its next request), so [`Guarded`] watches the bytes itself:
//! the first byte after a response starts a header block, the blank line that ends it (HTTP/1:
//! CRLF CRLF) ends it. Only HTTP/1 is served, over TCP or TLS (this wraps the decrypted bytes).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Hands out one slot per open connection.
#[derive(Debug, Clone)]
pub struct Slots(Arc<Semaphore>);

impl Slots {
    pub fn new(limits: &Limits) -> Self {
        Self(Arc::new(Semaphore::new(limits.max_connections)))
    }

    /// Waits for a free slot; the connection holds it until it closes.
    pub async fn take(&self) -> OwnedSemaphorePermit {
        self.0.clone().acquire_owned().await.expect("the connection slots are never closed")
    }
}

/// Where a connection is in its request/response cycle, as far as its bytes tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between requests: waiting for the next one.
    Idle,
    /// Reading a header block; `matched` bytes of its closing CRLF CRLF seen so far.
    Head { matched: u8 },
    /// The header block is in: a body, the handler, the response.
    Busy,
}

/// A connection under [`Limits`]: reads fail with `TimedOut` once its deadline has passed,
/// which makes hyper close it.
pub struct Guarded<T> {
    inner: T,
    limits: Limits,
    phase: Phase,
    deadline: Pin<Box<Sleep>>,
    _slot: OwnedSemaphorePermit,
}

impl<T> std::fmt::Debug for Guarded<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded").field("phase", &self.phase).finish_non_exhaustive()
    }
}

impl<T> Guarded<T> {
    pub fn new(inner: T, limits: Limits, slot: OwnedSemaphorePermit) -> Self {
        let deadline = Box::pin(tokio::time::sleep(limits.idle_timeout));
        Self { inner, limits, phase: Phase::Idle, deadline, _slot: slot }
    }

    fn extend(&mut self, by: Duration) {
        self.deadline.as_mut().reset(Instant::now() + by);
    }

    /// Bytes arrived from the client.
    fn received(&mut self, bytes: &[u8]) {
        if self.phase == Phase::Idle {
            self.phase = Phase::Head { matched: 0 };
            self.extend(self.limits.header_read_timeout);
        }
        if let Phase::Head { matched } = self.phase {
            match end_of_head(matched, bytes) {
                Ok(()) => {
                    self.phase = Phase::Busy;
                    self.extend(self.limits.idle_timeout);
                }
                Err(matched) => self.phase = Phase::Head { matched },
            }
        } else {
            self.extend(self.limits.idle_timeout);
        }
    }

    /// Bytes went to the client: a response, so the next bytes in begin a new request.
    fn sent(&mut self) {
        self.phase = Phase::Idle;
        self.extend(self.limits.idle_timeout);
    }
}

/// Scans `bytes` for the CRLF CRLF that ends a header block, `matched` bytes of it having been
/// seen at the end of the previous read: `Ok` when it is complete, else how much of it the
/// bytes end with.
fn end_of_head(mut matched: u8, bytes: &[u8]) -> Result<(), u8> {
    const END: &[u8; 4] = b"\r\n\r\n";
    for &b in bytes {
        matched = if b == END[matched as usize] {
            matched + 1
        } else if b == b'\r' {
            1
        } else {
            0
        };
        if matched == 4 {
            return Ok(());
        }
    }
    Err(matched)
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let received = &buf.filled()[before..];
                if !received.is_empty() {
                    self.received(received);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if self.deadline.as_mut().poll(cx).is_ready() {
                    let why = match self.phase {
                        Phase::Head { .. } => "the request's headers did not arrive in time",
                        Phase::Idle | Phase::Busy => "the connection was idle too long",
                    };
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why)));
                }
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.sent();
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, data);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.sent();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[test]
    fn the_end_of_a_header_block_is_found_across_reads() {
        assert_eq!(end_of_head(0, b"GET / HTTP/1.1\r\nHost: x\r\n"), Err(2));
        assert_eq!(end_of_head(2, b"\r"), Err(3));
        assert_eq!(end_of_head(3, b"\n"), Ok(()));
        assert_eq!(end_of_head(0, b"a\r\r\n\r\nbody"), Ok(()));
        assert_eq!(end_of_head(1, b"x"), Err(0));
    }

    fn limits() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1,
        }
    }

    async fn guarded() -> (Guarded<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        let (server, client) = tokio::io::duplex(1024);
        let slot = Slots::new(&limits()).take().await;
        (Guarded::new(server, limits(), slot), client)
    }

    #[tokio::test(start_paused = true)]
    async fn a_header_block_that_does_not_finish_in_time_fails_the_read() {
        let (mut server, mut client) = guarded().await;
        client.write_all(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let mut buf = [0u8; 1024];
        assert!(server.read(&mut buf).await.is_ok());
        let started = Instant::now();
        let error = server.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_keep_alive_connection_may_idle_until_the_idle_timeout() {
        let (mut server, mut client) = guarded().await;
        client.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 1024];
        assert!(server.read(&mut buf).await.is_ok());
        server.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.unwrap();
        let started = Instant::now();
        let error = server.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(60), "not the header timeout");
    }
}
