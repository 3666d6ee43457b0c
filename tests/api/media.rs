//! `/v1/media`: upload, download byte for byte, delete; type and size limits; a 60 MB upload
//! streamed through a server whose memory stays small.

use std::time::Instant;

use crate::support;
use crate::support::pipeline::ask_until;
use crate::support::{Backend, Server, TestDb, assert_error, assert_meta};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

both_backends!(
    round_trip,
    type_and_size_limits,
    large_upload_streams,
    abandoned_upload_leaves_nothing
);

const MB: usize = 1024 * 1024;

/// Deterministic bytes that do not repeat in any short period (xorshift), so a chunk written
/// out of order or twice could not go unnoticed.
struct Bytes(u64);

impl Bytes {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = (self.0 >> 24) as u8;
        }
    }

    fn take(seed: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        Self::new(seed).fill(&mut v);
        v
    }
}

async fn upload(
    server: &Server,
    token: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = server.http.post(server.url("/v1/media")).bearer_auth(token).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    support::send(req).await
}

fn media_id(body: &Value) -> String {
    let id = body["media"][0]["id"].as_str().unwrap_or_else(|| panic!("no media id: {body}"));
    let parsed = uuid_v4(id);
    assert!(parsed, "{id} is not a UUID v4");
    id.to_owned()
}

fn uuid_v4(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()))
        && groups[2].starts_with('4')
        && groups[3].starts_with(['8', '9', 'a', 'b'])
}

async fn download(server: &Server, token: &str, id: &str) -> reqwest::Response {
    server.http.get(server.url(&format!("/v1/media/{id}"))).bearer_auth(token).send().await.unwrap()
}

async fn round_trip(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;

    // Three chunks, the last one partial; and a file smaller than one chunk.
    for (content_type, bytes) in [
        ("application/pdf", Bytes::take(1, 1_300_000)),
        ("image/png", Bytes::take(2, 10)),
        ("audio/ogg; codecs=opus", Bytes::take(3, 512 * 1024)),
    ] {
        let (status, body) = upload(&server, &token, Some(content_type), bytes.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_meta(&body);
        let id = media_id(&body);

        let resp = download(&server, &token, &id).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], content_type);
        assert_eq!(resp.headers()["content-length"], bytes.len().to_string().as_str());
        assert!(
            resp.bytes().await.unwrap() == bytes,
            "{content_type}: the bytes come back exactly"
        );

        let (status, body) = server
            .send_json(Method::DELETE, &format!("/v1/media/{id}"), Some(&token), Value::Null)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_meta(&body);
        let (status, body) = server.get(&format!("/v1/media/{id}"), Some(&token)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_error(&body, 1006, &id);
        let (status, body) = server
            .send_json(Method::DELETE, &format!("/v1/media/{id}"), Some(&token), Value::Null)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_error(&body, 1006, &id);
    }
    assert_eq!(db.scalar("SELECT COUNT(*) FROM media_chunks").await, 0, "deleted with its chunks");

    // Unknown ids, and no credentials.
    let (status, body) =
        server.get("/v1/media/36c484d1-1283-4b94-988d-7276bdec4de2", Some(&token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, 1006, "not found");
    let (status, body) = server.get("/v1/media/not-a-uuid", Some(&token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, 1006, "not found");
    let (status, body) = support::send(
        server
            .http
            .post(server.url("/v1/media"))
            .header("content-type", "image/png")
            .body(vec![1, 2, 3]),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, 1005, "Invalid credentials");
    let (status, _) = server.get("/v1/media/36c484d1-1283-4b94-988d-7276bdec4de2", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Another replica on the same database serves the same media (promise 5).
    let (status, body) = upload(&server, &token, Some("video/mp4"), Bytes::take(4, 70_000)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = media_id(&body);
    let other = Server::start(&db).await;
    let resp = download(&other, &token, &id).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.bytes().await.unwrap() == Bytes::take(4, 70_000));
}

async fn type_and_size_limits(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;

    let (status, body) = upload(&server, &token, Some("image/png"), Vec::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1008, "Request had no (empty) content");

    let (status, body) = upload(&server, &token, None, vec![1, 2, 3]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1008, "'Content-Type'");

    for (content_type, says) in [
        ("image/gif", "Content-Type: image/gif is not a supported type"),
        ("video/x-msvideo", "Content-Type: video/x-msvideo is not a supported type"),
        ("audio/wav", "Content-Type: audio/wav is not a supported type"),
        ("multipart/form-data; boundary=xyz", "Content-Type: multipart uploads are not supported"),
        ("jpeg", "Content-Type: 'jpeg' is not a media type"),
    ] {
        let (status, body) = upload(&server, &token, Some(content_type), vec![1, 2, 3]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{content_type}: {body}");
        assert_error(&body, 1009, says);
    }

    // A refused upload is read to its end first, so the client, still sending, gets the answer.
    let (status, body) = upload(&server, &token, Some("image/gif"), vec![1; 3 * MB]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1009, "Content-Type: image/gif is not a supported type");

    // Per-type limits, exactly at the limit and one byte past it.
    for (content_type, limit, says) in [
        ("image/jpeg", 5 * MB, "5 MB"),
        ("image/webp", 100 * 1024, "100 KB"),
        ("audio/mpeg", 16 * MB, "16 MB"),
    ] {
        let (status, body) = upload(&server, &token, Some(content_type), vec![7; limit]).await;
        assert_eq!(status, StatusCode::CREATED, "{content_type} at its limit: {body}");
        let (status, body) = upload(&server, &token, Some(content_type), vec![7; limit + 1]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{content_type} past its limit");
        assert_error(&body, 1009, &format!("Request content exceeds size of {says}"));
    }

    // A body with no declared length is measured as it streams in.
    let (status, body) =
        raw_upload(&server, &token, "video/mp4", 16 * MB as u64 + 1, 5, Framing::Chunked).await;
    assert_eq!(status, 400);
    assert_error(&body, 1009, "Request content exceeds size of 16 MB");
    // So is one over the overall 64 MB, declared or not.
    let (status, body) =
        raw_upload(&server, &token, "application/zip", 64 * MB as u64 + 1, 6, Framing::Chunked)
            .await;
    assert_eq!(status, 400);
    assert_error(&body, 1009, "Request content exceeds size of 64 MB");
    let (status, body) =
        raw_upload(&server, &token, "application/zip", 64 * MB as u64 + 1, 6, Framing::Length)
            .await;
    assert_eq!(status, 400);
    assert_error(&body, 1009, "Request content exceeds size of 64 MB");

    // Nothing refused was kept, not even in part: only the three uploads at their limits.
    assert_eq!(db.scalar("SELECT COUNT(*) FROM media").await, 3);
    let expected_chunks = (10 + 1 + 32) as i64; // 5 MB, 100 KB and 16 MB in 512 KiB chunks
    assert_eq!(db.scalar("SELECT COUNT(*) FROM media_chunks").await, expected_chunks);
}

/// An upload cut off by its client is deleted by a background task; give it a moment.
async fn wait_for_chunks(db: &TestDb, expected: i64) {
    let chunks = || db.scalar("SELECT COUNT(*) FROM media_chunks");
    let what = format!("{expected} chunks stored");
    ask_until(std::time::Duration::from_secs(10), &what, chunks, |n| *n == expected).await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length,
    Chunked,
}

/// Uploads `len` generated bytes over a plain HTTP/1.1 connection, writing them as they are
/// generated (nothing of the body is held here either), and returns the status and JSON
/// answer. Stops writing if the server answers early.
async fn raw_upload(
    server: &Server,
    token: &str,
    content_type: &str,
    len: u64,
    seed: u64,
    framing: Framing,
) -> (u16, Value) {
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let length_header = match framing {
        Framing::Length => format!("Content-Length: {len}"),
        Framing::Chunked => "Transfer-Encoding: chunked".to_owned(),
    };
    let head = format!(
        "POST /v1/media HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: {content_type}\r\n{length_header}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let mut bytes = Bytes::new(seed);
        let mut buf = vec![0u8; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            bytes.fill(&mut buf[..n]);
            let sent = match framing {
                Framing::Length => write.write_all(&buf[..n]).await,
                Framing::Chunked => {
                    let mut framed = format!("{n:x}\r\n").into_bytes();
                    framed.extend_from_slice(&buf[..n]);
                    framed.extend_from_slice(b"\r\n");
                    write.write_all(&framed).await
                }
            };
            if sent.is_err() {
                return; // the server answered early and closed
            }
            left -= n as u64;
        }
        if framing == Framing::Chunked {
            let _ = write.write_all(b"0\r\n\r\n").await;
        }
        let _ = write.flush().await;
        // Keep the write half open until the answer is read.
        std::future::pending::<()>().await;
    });
    let mut answer = Vec::new();
    let _ = read.read_to_end(&mut answer).await;
    writer.abort();
    let text = String::from_utf8_lossy(&answer);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body:?}")))
}

async fn large_upload_streams(backend: Backend) {
    const LEN: u64 = 60 * MB as u64;
    const LIMIT: u64 = 150 * MB as u64;
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;
    let before = server.peak_rss_bytes();

    let started = Instant::now();
    let (status, body) =
        raw_upload(&server, &token, "application/octet-stream", LEN, 42, Framing::Length).await;
    assert_eq!(status, 201, "{body}");
    let id = media_id(&body);
    let uploaded_in = started.elapsed();
    let after_upload = server.peak_rss_bytes();

    let mut expected = Sha256::new();
    let mut generator = Bytes::new(42);
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = LEN;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        generator.fill(&mut buf[..n]);
        expected.update(&buf[..n]);
        left -= n as u64;
    }

    let started = Instant::now();
    let mut resp = download(&server, &token, &id).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-length"], LEN.to_string().as_str());
    let mut got = Sha256::new();
    let mut received = 0u64;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        received += chunk.len() as u64;
        got.update(&chunk);
    }
    let downloaded_in = started.elapsed();
    assert_eq!(received, LEN);
    assert_eq!(got.finalize(), expected.finalize(), "the download is the upload, byte for byte");
    let after_download = server.peak_rss_bytes();

    let mib = |b: u64| b as f64 / MB as f64;
    eprintln!(
        "{backend:?}: 60 MB upload in {uploaded_in:.1?}, download in {downloaded_in:.1?}; server \
         VmHWM {:.1} MiB at start, {:.1} MiB after the upload, {:.1} MiB after the download",
        mib(before),
        mib(after_upload),
        mib(after_download)
    );
    assert!(after_upload < LIMIT, "upload peak {:.1} MiB", mib(after_upload));
    assert!(after_download < LIMIT, "download peak {:.1} MiB", mib(after_download));
    // Sharper: the start-up peak (password hashing at login) is most of it; holding the file
    // anywhere would add 60 MB on top.
    assert!(
        after_download - before < 32 * MB as u64,
        "moving 60 MB through the server grew its peak by {:.1} MiB",
        mib(after_download - before)
    );
}

async fn abandoned_upload_leaves_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;

    // A client that sends 3 MB of a declared 10 MB and hangs up.
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/media HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/pdf\r\nContent-Length: {}\r\n\r\n",
        10 * MB
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&Bytes::take(9, 3 * MB)).await.unwrap();
    // Until some chunks are stored, so there is something to clean up.
    let chunks = || db.scalar("SELECT COUNT(*) FROM media_chunks");
    ask_until(std::time::Duration::from_secs(10), "the upload's first chunks", chunks, |n| *n >= 4)
        .await;
    drop(stream);
    wait_for_chunks(&db, 0).await;
    assert_eq!(db.scalar("SELECT COUNT(*) FROM media").await, 0);
}
