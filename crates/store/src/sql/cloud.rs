//! What the Cloud bridge keeps: the Cloud API's ids of sent messages (a column of `messages`,
//! written with the acknowledgement) and the Cloud ids of uploaded media.

use async_trait::async_trait;

use premise_base::UnixMs;

use crate::store::CloudBridge;
use crate::{CloudMedia, StoreError, UpstreamId};

/// Ids looked up in one statement at most (a webhook carries a handful).
const LOOKUP_CHUNK: usize = 500;

/// `SELECT {columns} FROM messages WHERE {key} IN ($1, ..., $n) AND upstream_id IS NOT NULL`.
fn lookup_statement(columns: &str, key: &str, count: usize) -> String {
    let placeholders: Vec<String> = (1..=count).map(|n| format!("${n}")).collect();
    format!(
        "SELECT {columns} FROM messages WHERE {key} IN ({}) AND upstream_id IS NOT NULL",
        placeholders.join(", ")
    )
}

fn upstream_id((message_id, upstream_id): (String, String)) -> UpstreamId {
    UpstreamId { message_id, upstream_id }
}

for_each_backend! {
    impl Db {
        /// The messages whose `key` (`id` or `upstream_id`) is one of `keys` and that have an
        /// upstream id, a chunk of keys a statement.
        async fn upstream_id_lookup(
            &self,
            key: &str,
            keys: &[String],
        ) -> Result<Vec<UpstreamId>, StoreError> {
            let mut found = Vec::new();
            for chunk in keys.chunks(LOOKUP_CHUNK) {
                let statement = lookup_statement("id, upstream_id", key, chunk.len());
                let mut query = sqlx::query_as::<_, (String, String)>(&statement);
                for id in chunk {
                    query = query.bind(id);
                }
                found.extend(query.fetch_all(&self.pool).await?);
            }
            Ok(found.into_iter().map(upstream_id).collect())
        }
    }

    #[async_trait]
    impl CloudBridge for Db {
        async fn messages_by_upstream_id(
            &self,
            upstream_ids: &[String],
        ) -> Result<Vec<UpstreamId>, StoreError> {
            self.upstream_id_lookup("upstream_id", upstream_ids).await
        }

        async fn upstream_ids_of(
            &self,
            message_ids: &[String],
        ) -> Result<Vec<UpstreamId>, StoreError> {
            self.upstream_id_lookup("id", message_ids).await
        }

        async fn cloud_media(&self, media_id: &str) -> Result<Option<CloudMedia>, StoreError> {
            let row: Option<(String, i64)> =
                sqlx::query_as("SELECT cloud_id, uploaded_at FROM cloud_media WHERE media_id = $1")
                    .bind(media_id)
                    .fetch_optional(&self.pool)
                    .await?;
            Ok(row.map(|(cloud_id, uploaded_at)| CloudMedia {
                cloud_id,
                uploaded_at: UnixMs::from_secs(uploaded_at),
            }))
        }

        async fn put_cloud_media(
            &self,
            media_id: &str,
            cloud: &CloudMedia,
        ) -> Result<(), StoreError> {
            let mut tx = self.tx().await?;
            sqlx::query(
                "INSERT INTO cloud_media (media_id, cloud_id, uploaded_at) VALUES ($1, $2, $3)
                 ON CONFLICT (media_id) DO UPDATE
                 SET cloud_id = excluded.cloud_id, uploaded_at = excluded.uploaded_at",
            )
            .bind(media_id)
            .bind(&cloud.cloud_id)
            .bind(cloud.uploaded_at.secs())
            .execute(tx.conn())
            .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn forget_cloud_media(&self, media_id: &str, cloud_id: &str) -> Result<(), StoreError> {
            let mut tx = self.tx().await?;
            sqlx::query("DELETE FROM cloud_media WHERE media_id = $1 AND cloud_id = $2")
                .bind(media_id)
                .bind(cloud_id)
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
            Ok(())
        }
    }
}
