//! Media a message names by its Premise id (uploaded to `/v1/media`): Cloud cannot fetch it, so
//! its bytes are uploaded to Cloud once (`POST /{phone-number-id}/media`, multipart, streamed
//! chunk by chunk from the store) and the Cloud id is kept in the store, where every replica
//! finds it. Cloud forgets uploads after 30 days: an id older than [`REUSE_FOR`] is
//! replaced by a new upload, and one Cloud says it does not know is forgotten.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use premise_base::UnixMs;
use premise_store::{CloudMedia, Store};
use premise_wire::StatusError;

use super::client::CloudClient;
use super::errors::CloudError;
use crate::Clock;

/// Cloud keeps uploaded media 30 days; an upload is reused for a day less, so it is never
/// sent just as it expires.
pub const REUSE_FOR: std::time::Duration = std::time::Duration::from_secs(29 * 24 * 3600);

/// Why a message's media could not be given Cloud ids.
#[derive(Debug)]
pub enum MediaError {
    /// The media cannot be had for good (deleted from Premise after the message was accepted,
    /// or its link refused): the message fails.
    Missing(StatusError),
    /// The store or Cloud failed; worth retrying.
    Failed(String, Option<CloudError>),
}

/// The Cloud id of each of `media_ids`, uploading those Cloud does not have (or may have
/// forgotten), with when each was uploaded.
pub async fn cloud_ids(
    client: &CloudClient,
    store: &Arc<dyn Store>,
    clock: &Clock,
    media_ids: &[String],
) -> Result<HashMap<String, CloudMedia>, MediaError> {
    let mut ids = HashMap::new();
    for media_id in media_ids {
        let known = store.cloud_media(media_id).await.map_err(|e| {
            MediaError::Failed(format!("cannot read the Cloud media ids: {e}"), None)
        })?;
        // Kept to the second, as the store keeps it.
        let now = UnixMs::from_secs(clock.now().secs());
        let cloud = match known {
            Some(known) if known.uploaded_at > now.minus(REUSE_FOR) => known,
            _ => {
                let cloud_id = upload(client, store, media_id).await?;
                let cloud = CloudMedia { cloud_id, uploaded_at: now };
                store.put_cloud_media(media_id, &cloud).await.map_err(|e| {
                    MediaError::Failed(format!("cannot record the Cloud media id: {e}"), None)
                })?;
                cloud
            }
        };
        ids.insert(media_id.clone(), cloud);
    }
    Ok(ids)
}

async fn upload(
    client: &CloudClient,
    store: &Arc<dyn Store>,
    media_id: &str,
) -> Result<String, MediaError> {
    let info = store
        .media(media_id)
        .await
        .map_err(|e| MediaError::Failed(format!("cannot read media {media_id}: {e}"), None))?
        .ok_or_else(|| {
            MediaError::Missing(StatusError {
                code: 1006,
                title: "Resource not found".to_owned(),
                details: Some(format!("media {media_id} was deleted before it could be sent")),
            })
        })?;
    // Chunks are read by a task of their own, one ahead of the upload, so the request body is a
    // plain channel (the HTTP client wants a body it can share between threads).
    let (chunks, mut receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let (reader_store, id) = (store.clone(), media_id.to_owned());
    let reader = tokio::spawn(async move {
        for index in 0..info.chunks {
            let chunk = match reader_store.media_chunk(&id, index).await {
                Ok(Some(bytes)) => Ok(Bytes::from(bytes)),
                Ok(None) => Err(std::io::Error::other(format!("media {id} lost chunk {index}"))),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            let failed = chunk.is_err();
            if chunks.send(chunk).await.is_err() || failed {
                return;
            }
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    let uploaded = client.upload_media(&info.mime_type, info.size, media_id, body).await;
    reader.abort();
    uploaded
        .map_err(|e| MediaError::Failed(format!("cannot upload media {media_id}: {e}"), Some(e)))
}
