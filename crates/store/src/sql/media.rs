//! Uploaded media, as ordered chunks: `media` holds the upload, invisible until finished,
//! `media_chunks` its bytes. Each chunk is a short write of its own, so neither a slow client
//! nor a large file keeps a transaction (or SQLite's one writer) busy.

use async_trait::async_trait;
use premise_base::UnixMs;

use crate::model::MediaInfo;
use crate::model::{MediaRow, media_info};
use crate::{Media, StoreError};

/// A chunk number (or count) as its `INTEGER` column holds it.
fn chunk_index(index: u32) -> Result<i32, StoreError> {
    i32::try_from(index).map_err(|_| StoreError::Corrupt(format!("chunk index {index}")))
}

for_each_backend! {
    #[async_trait]
    impl Media for Db {
        async fn begin_media(
            &self,
            id: &str,
            mime_type: &str,
            now: UnixMs,
        ) -> Result<bool, StoreError> {
            let mut tx = self.tx().await?;
            let result = sqlx::query(
                "INSERT INTO media (id, mime_type, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(mime_type)
            .bind(now.secs())
            .execute(tx.conn())
            .await?;
            tx.commit().await?;
            Ok(result.rows_affected() == 1)
        }

        async fn put_media_chunk(&self, id: &str, index: u32, data: &[u8]) -> Result<(), StoreError> {
            let mut tx = self.tx().await?;
            sqlx::query("INSERT INTO media_chunks (media_id, idx, data) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(chunk_index(index)?)
                .bind(data)
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn finish_media(
            &self,
            id: &str,
            size: u64,
            chunks: u32,
            sha256: &str,
        ) -> Result<bool, StoreError> {
            let size = i64::try_from(size).map_err(|_| StoreError::Corrupt("media size".into()))?;
            let mut tx = self.tx().await?;
            let result = sqlx::query(
                "UPDATE media SET size = $2, chunks = $3, sha256 = $4, complete = TRUE
                 WHERE id = $1 AND NOT complete",
            )
            .bind(id)
            .bind(size)
            .bind(chunk_index(chunks)?)
            .bind(sha256)
            .execute(tx.conn())
            .await?;
            tx.commit().await?;
            Ok(result.rows_affected() == 1)
        }

        async fn media(&self, id: &str) -> Result<Option<MediaInfo>, StoreError> {
            let row: Option<MediaRow> = sqlx::query_as(
                "SELECT id, mime_type, size, chunks, sha256, created_at FROM media
                 WHERE id = $1 AND complete",
            )
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
            row.map(media_info).transpose()
        }

        async fn media_chunk(&self, id: &str, index: u32) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(sqlx::query_scalar("SELECT data FROM media_chunks WHERE media_id = $1 AND idx = $2")
                .bind(id)
                .bind(chunk_index(index)?)
                .fetch_optional(self.reader())
                .await?)
        }

        async fn delete_media(&self, id: &str) -> Result<bool, StoreError> {
            let mut tx = self.tx().await?;
            sqlx::query("DELETE FROM media_chunks WHERE media_id = $1")
                .bind(id)
                .execute(tx.conn())
                .await?;
            sqlx::query("DELETE FROM cloud_media WHERE media_id = $1")
                .bind(id)
                .execute(tx.conn())
                .await?;
            let result =
                sqlx::query("DELETE FROM media WHERE id = $1").bind(id).execute(tx.conn()).await?;
            tx.commit().await?;
            Ok(result.rows_affected() == 1)
        }

        async fn purge_unfinished_media(&self, started_before: UnixMs) -> Result<u64, StoreError> {
            let mut tx = self.tx().await?;
            sqlx::query(
                "DELETE FROM media_chunks WHERE media_id IN
                   (SELECT id FROM media WHERE NOT complete AND created_at < $1)",
            )
            .bind(started_before.secs())
            .execute(tx.conn())
            .await?;
            let result = sqlx::query("DELETE FROM media WHERE NOT complete AND created_at < $1")
                .bind(started_before.secs())
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
            Ok(result.rows_affected())
        }
    }
}
