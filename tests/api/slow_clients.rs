//! Slow and idle clients cannot hold the server's connections: a header block must arrive in
//! time, idle connections are closed, and the number open at once is capped. Raw TCP clients
//! against the real binary; the timeouts are shortened so the test takes seconds.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use crate::support::{Backend, Server, TestDb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADER_TIMEOUT_MS: u64 = 1_000;
const IDLE_TIMEOUT_MS: u64 = 2_500;

async fn server(max_connections: &str) -> (Server, TestDb) {
    let db = TestDb::new(Backend::Sqlite).await;
    let env = [
        ("PREMISE_SERVER__HEADER_READ_TIMEOUT_MS", "1000"),
        ("PREMISE_SERVER__IDLE_TIMEOUT_MS", "2500"),
        ("PREMISE_SERVER__MAX_CONNECTIONS", max_connections),
    ];
    (Server::start_with(&db, &env).await, db)
}

fn address(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// A connection that sent a request line and a header, then nothing.
async fn slowloris(server: &Server) -> TcpStream {
    let mut stream = TcpStream::connect(address(server)).await.unwrap();
    stream.write_all(b"POST /v1/messages HTTP/1.1\r\nHost: premise\r\n").await.unwrap();
    stream
}

/// Waits (up to `within`) for the server to close `stream`; how long that took.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + within).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {} // an answer (408 or the like) before the close
        }
    }
}

/// One request on `stream`; its status line.
async fn request(stream: &mut TcpStream, path: &str) -> String {
    let head = format!("GET {path} HTTP/1.1\r\nHost: premise\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = stream.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn connections_that_never_finish_their_headers_are_closed() {
    let (server, _db) = server("4096").await;
    let mut streams = Vec::new();
    for _ in 0..500 {
        streams.push(slowloris(&server).await);
    }
    let (status, _) = server.get("/healthz", None).await;
    assert_eq!(status, 200, "the server still serves others");
    let started = Instant::now();
    let mut open = 0;
    for stream in &mut streams {
        let left =
            Duration::from_millis(HEADER_TIMEOUT_MS + 4_000).saturating_sub(started.elapsed());
        if closed_within(stream, left).await.is_none() {
            open += 1;
        }
    }
    println!("500 slow connections: {open} still open {:?} later", started.elapsed());
    assert_eq!(open, 0, "every slow connection is closed after the header timeout");

    // A byte now and then does not keep a header block alive.
    let mut trickle = slowloris(&server).await;
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_millis(HEADER_TIMEOUT_MS * 3) {
        if trickle.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        if closed_within(&mut trickle, Duration::from_millis(200)).await.is_some() {
            closed = true;
            break;
        }
    }
    assert!(closed, "a trickling header is closed");
    assert!(started.elapsed() >= Duration::from_millis(HEADER_TIMEOUT_MS - 100));
}

#[tokio::test]
async fn idle_keep_alive_connections_live_until_the_idle_timeout() {
    let (server, _db) = server("4096").await;
    let mut stream = TcpStream::connect(address(&server)).await.unwrap();
    assert!(request(&mut stream, "/healthz").await.contains("200"));
    // Idle longer than the header timeout: still open, and serves the next request.
    assert_eq!(
        closed_within(&mut stream, Duration::from_millis(HEADER_TIMEOUT_MS + 500)).await,
        None
    );
    assert!(request(&mut stream, "/healthz").await.contains("200"));
    let idle = closed_within(&mut stream, Duration::from_millis(IDLE_TIMEOUT_MS + 3_000)).await;
    let idle = idle.expect("an idle keep-alive connection is closed");
    println!("idle keep-alive connection closed after {idle:?}");
    assert!(idle >= Duration::from_millis(IDLE_TIMEOUT_MS - 200), "{idle:?}");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_one() {
    let (server, _db) = server("20").await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        slow.push(slowloris(&server).await);
    }
    let started = Instant::now();
    let mut stream = TcpStream::connect(address(&server)).await.unwrap();
    let status = request(&mut stream, "/healthz").await;
    let waited = started.elapsed();
    println!("the 21st connection was answered after {waited:?}");
    assert!(status.contains("200"), "{status}");
    assert!(
        waited >= Duration::from_millis(HEADER_TIMEOUT_MS / 2),
        "served only once the slow connections were closed: {waited:?}"
    );
}
