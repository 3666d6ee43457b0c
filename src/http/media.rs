//! `/v1/media`: upload (the raw file as the body, its type in `Content-Type`), download and
//! delete (`docs/onprem-api.md` section 5).
//!
//! The bytes live in the store as chunks of [`CHUNK_BYTES`], so any replica serves any media
//! (promise 5), and neither direction ever holds a whole file in memory: an upload reads the
//! socket one chunk at a time and writes each chunk before reading on (the client is slowed to
//! the database's pace, not buffered); a download fetches the next chunk only once the client
//! has taken the previous one. An upload becomes visible only once its last chunk is written;
//! one that fails or is abandoned half-way is deleted.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body::{Frame, SizeHint};
use premise_base::Clock;
use premise_store::Store;
use premise_wire::media::{MAX_MEDIA_BYTES, MediaType, empty_upload};
use premise_wire::{ErrorCode, Rejection};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::auth::Caller;
use super::reply::{reply, reply_empty};
use super::{ApiError, AppState};

/// Bytes per stored chunk: large enough that a 64 MB file is 128 rows, small enough that an
/// upload or a download in flight costs well under a megabyte of memory.
pub const CHUNK_BYTES: usize = 512 * 1024;

/// Uploads never finished within this time are leftovers of a replica that died mid-upload.
const UNFINISHED_UPLOAD: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/media", post(upload))
        .route("/v1/media/{id}", get(download).delete(remove))
        // The server-wide limit is for JSON bodies; uploads enforce their own, per type, as
        // they stream, and this keeps any buffering extractor added here at the overall cap.
        .layer(DefaultBodyLimit::max(MAX_MEDIA_BYTES as usize))
}

/// 201 `{"media":[{"id":"<uuid v4>"}]}` once every byte is stored.
async fn upload(
    State(state): State<AppState>,
    _caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut body = body;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let content_type = headers.get(CONTENT_TYPE).map(|v| v.to_str().map_err(|_| ()));
    let media_type = match content_type {
        Some(Err(())) => Err(Rejection::invalid("Content-Type", "is not ASCII text")),
        Some(Ok(value)) => MediaType::parse(Some(value)),
        None => MediaType::parse(None),
    };
    let media_type = match media_type {
        Ok(media_type) => media_type,
        Err(rejection) => return Err(refuse(&mut body, declared, rejection).await),
    };
    match declared {
        Some(0) => return Err(empty_upload().into()),
        Some(n) if n > media_type.max_bytes() => {
            return Err(refuse(&mut body, declared, media_type.too_large()).await);
        }
        _ => {}
    }

    let mut upload = Upload::new(state.store.clone(), media_type, state.clock.clone());
    let mut received = 0u64;
    while let Some(frame) = next_frame(&mut body).await {
        let data = match frame.map(Frame::into_data) {
            Ok(Ok(data)) => data,
            Ok(Err(_trailers)) => continue,
            Err(e) => {
                upload.abandon().await;
                return Err(ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("cannot read the upload: {e}"),
                ));
            }
        };
        received += data.len() as u64;
        if received > upload.media_type.max_bytes() {
            let refusal = upload.media_type.too_large();
            upload.abandon().await;
            drain(&mut body, received).await;
            return Err(refusal.into());
        }
        if let Err(e) = upload.write(&data).await {
            upload.abandon().await;
            return Err(e);
        }
    }
    let id = upload.finish().await?;
    Ok(reply(StatusCode::CREATED, json!({ "media": [{ "id": id }] })))
}

/// An upload in progress. Dropped before [`Upload::finish`] (an error, or the client went
/// away and the request was cancelled), it deletes whatever it stored. Also how media a
/// customer sent through the Cloud API is stored (see `webhook`).
#[derive(Debug)]
pub(super) struct Upload {
    store: Arc<dyn Store>,
    clock: Clock,
    id: String,
    pub(super) media_type: MediaType,
    buffer: Vec<u8>,
    size: u64,
    chunks: u32,
    sha256: Sha256,
    begun: bool,
    /// Finished or abandoned: nothing left for `drop` to clean up.
    settled: bool,
}

impl Upload {
    pub(super) fn new(store: Arc<dyn Store>, media_type: MediaType, clock: Clock) -> Self {
        Self::with_id(uuid::Uuid::new_v4().to_string(), store, media_type, clock)
    }

    /// An upload stored under `id`.
    pub(super) fn with_id(
        id: String,
        store: Arc<dyn Store>,
        media_type: MediaType,
        clock: Clock,
    ) -> Self {
        Self {
            store,
            clock,
            id,
            media_type,
            buffer: Vec::with_capacity(CHUNK_BYTES),
            size: 0,
            chunks: 0,
            sha256: Sha256::new(),
            begun: false,
            settled: false,
        }
    }

    pub(super) async fn write(&mut self, mut data: &[u8]) -> Result<(), ApiError> {
        self.size += data.len() as u64;
        self.sha256.update(data);
        while !data.is_empty() {
            let take = (CHUNK_BYTES - self.buffer.len()).min(data.len());
            self.buffer.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buffer.len() == CHUNK_BYTES {
                self.flush().await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ApiError> {
        if !self.begun {
            let now = self.clock.now();
            self.store.purge_unfinished_media(now.minus(UNFINISHED_UPLOAD)).await?;
            if !self.store.begin_media(&self.id, self.media_type.as_str(), now).await? {
                // A UUID v4 collision: answered as the Webapp did.
                return Err(ApiError::new(
                    ErrorCode::ResourceAlreadyExists,
                    "Possible id conflict. Try again",
                ));
            }
            self.begun = true;
        }
        self.store.put_media_chunk(&self.id, self.chunks, &self.buffer).await?;
        self.chunks += 1;
        self.buffer.clear();
        Ok(())
    }

    pub(super) async fn finish(mut self) -> Result<String, ApiError> {
        if self.size == 0 {
            return Err(empty_upload().into());
        }
        if !self.buffer.is_empty() {
            self.flush().await?;
        }
        let sha256: String = std::mem::take(&mut self.sha256)
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if !self.store.finish_media(&self.id, self.size, self.chunks, &sha256).await? {
            return Err(ApiError::internal(anyhow::anyhow!(
                "upload {} vanished before it was finished",
                self.id
            )));
        }
        self.settled = true;
        tracing::info!(id = %self.id, size = self.size, media_type = self.media_type.as_str(), "media stored");
        Ok(std::mem::take(&mut self.id))
    }
}

impl Upload {
    /// Deletes what was stored, before the refusal is answered.
    pub(super) async fn abandon(mut self) {
        self.settled = true;
        if self.begun
            && let Err(e) = self.store.delete_media(&self.id).await
        {
            tracing::warn!(id = %self.id, error = format!("{e:#}"), "cannot delete a refused upload; it will be purged later");
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.begun && !self.settled {
            let (store, id) = (self.store.clone(), std::mem::take(&mut self.id));
            tokio::spawn(async move {
                if let Err(e) = store.delete_media(&id).await {
                    tracing::warn!(%id, error = format!("{e:#}"), "cannot delete an abandoned upload; it will be purged later");
                }
            });
        }
    }
}

async fn next_frame(body: &mut Body) -> Option<Result<Frame<Bytes>, axum::Error>> {
    std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
}

/// Refuses an upload before storing any of it, once the client has sent it (see [`drain`]).
async fn refuse(body: &mut Body, declared: Option<u64>, rejection: Rejection) -> ApiError {
    if declared.is_none_or(|n| n <= MAX_MEDIA_BYTES) {
        drain(body, 0).await;
    }
    rejection.into()
}

/// Reads and discards the rest of a refused upload, so the client (which is still sending)
/// gets to read the refusal instead of a reset connection; but only up to the overall limit,
/// beyond which the connection is simply closed after the answer.
async fn drain(body: &mut Body, mut received: u64) {
    while let Some(Ok(frame)) = next_frame(body).await {
        if let Some(data) = frame.data_ref() {
            received += data.len() as u64;
            if received > MAX_MEDIA_BYTES {
                return;
            }
        }
    }
}

/// The bytes with their `Content-Type` and `Content-Length`, one chunk at a time.
async fn download(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    serve(&state, id).await
}

/// Media `id` as a download answers it (the API's, and the console's previews).
pub(super) async fn serve(state: &AppState, id: String) -> Result<Response, ApiError> {
    let info = state.store.media(&id).await?.ok_or_else(|| not_found(&id))?;
    let (tx, rx) = mpsc::channel(1);
    let store = state.store.clone();
    let chunks = info.chunks;
    tokio::spawn(async move {
        for index in 0..chunks {
            let next = match store.media_chunk(&id, index).await {
                Ok(Some(data)) => Ok(Bytes::from(data)),
                Ok(None) => Err(std::io::Error::other("the media was deleted during the download")),
                Err(e) => {
                    tracing::error!(%id, error = format!("{e:#}"), "cannot read a media chunk");
                    Err(std::io::Error::other("cannot read the media"))
                }
            };
            let failed = next.is_err();
            // A closed channel: the client went away.
            if tx.send(next).await.is_err() || failed {
                return;
            }
        }
    });
    let body = ChunkBody { chunks: rx, remaining: info.size };
    Ok(([(CONTENT_TYPE, info.mime_type), (CONTENT_LENGTH, info.size.to_string())], Body::new(body))
        .into_response())
}

async fn remove(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if state.store.delete_media(&id).await? {
        tracing::info!(%id, "media deleted");
        Ok(reply_empty(StatusCode::OK))
    } else {
        Err(not_found(&id))
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFound, format!("Media '{id}' not found"))
}

/// A response body fed chunk by chunk by the task that reads the store.
#[derive(Debug)]
struct ChunkBody {
    chunks: mpsc::Receiver<std::io::Result<Bytes>>,
    remaining: u64,
}

impl HttpBody for ChunkBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.chunks.poll_recv(cx).map(|next| {
            next.map(|chunk| {
                chunk.map(|data| {
                    self.remaining = self.remaining.saturating_sub(data.len() as u64);
                    Frame::data(data)
                })
            })
        })
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
