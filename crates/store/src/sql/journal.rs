//! The Cloud webhook journal: each signed webhook kept as received, one row per body (a
//! redelivery finds its row by the body's digest), marked processed once its parts are recorded.

use async_trait::async_trait;

use premise_base::UnixMs;

use crate::{Journaled, JournaledWebhook, StoreError, WebhookJournal};

for_each_backend! {
    #[async_trait]
    impl WebhookJournal for Db {
        async fn journal_webhook(
            &self,
            digest: &str,
            body: &[u8],
            received_at: UnixMs,
        ) -> Result<Journaled, StoreError> {
            let mut tx = self.tx().await?;
            sqlx::query(
                "INSERT INTO cloud_webhooks (digest, received_at, body) VALUES ($1, $2, $3)
                 ON CONFLICT (digest) DO NOTHING",
            )
            .bind(digest)
            .bind(received_at.ms())
            .bind(body)
            .execute(tx.conn())
            .await?;
            let (id, processed_at): (i64, Option<i64>) =
                sqlx::query_as("SELECT id, processed_at FROM cloud_webhooks WHERE digest = $1")
                    .bind(digest)
                    .fetch_one(tx.conn())
                    .await?;
            tx.commit().await?;
            Ok(Journaled { id, processed: processed_at.is_some() })
        }

        async fn webhook_processed(
            &self,
            id: i64,
            unmapped: Option<&str>,
            at: UnixMs,
        ) -> Result<(), StoreError> {
            let mut tx = self.tx().await?;
            sqlx::query("UPDATE cloud_webhooks SET processed_at = $2, unmapped = $3 WHERE id = $1")
                .bind(id)
                .bind(at.ms())
                .bind(unmapped)
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn unprocessed_webhooks(
            &self,
            before: UnixMs,
            limit: u32,
        ) -> Result<Vec<i64>, StoreError> {
            Ok(sqlx::query_scalar(
                "SELECT id FROM cloud_webhooks WHERE processed_at IS NULL AND received_at <= $1
                 ORDER BY id LIMIT $2",
            )
            .bind(before.ms())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?)
        }

        async fn webhook_is_processed(&self, id: i64) -> Result<bool, StoreError> {
            let row: Option<Option<i64>> =
                sqlx::query_scalar("SELECT processed_at FROM cloud_webhooks WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
            Ok(row.is_none_or(|processed_at| processed_at.is_some()))
        }

        async fn journaled_body(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(sqlx::query_scalar("SELECT body FROM cloud_webhooks WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
        }

        async fn unmapped_webhooks(&self, limit: u32) -> Result<Vec<JournaledWebhook>, StoreError> {
            let rows: Vec<(i64, i64, Option<i64>, String)> = sqlx::query_as(
                "SELECT id, received_at, processed_at, unmapped FROM cloud_webhooks
                 WHERE unmapped IS NOT NULL ORDER BY id DESC LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(id, received_at, processed_at, unmapped)| JournaledWebhook {
                    id,
                    received_at: UnixMs(received_at),
                    processed_at: processed_at.map(UnixMs),
                    unmapped,
                })
                .collect())
        }
    }
}
