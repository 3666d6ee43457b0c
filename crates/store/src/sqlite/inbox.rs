//! Inbound messages on SQLite.

use async_trait::async_trait;

use super::SqliteStore;
use crate::{InboundMessage, Inbox, StoreError};

#[async_trait]
impl Inbox for SqliteStore {
    async fn insert_inbound(
        &self,
        id: &str,
        from: &str,
        received_at_ms: i64,
        payload: &str,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO inbound_messages (id, sender, received_at, payload) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(from)
        .bind(received_at_ms)
        .bind(payload)
        .execute(&self.write)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn mark_inbound_read(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let found = sqlx::query(
            "UPDATE inbound_messages SET read_at = COALESCE(read_at, ?2) WHERE id = ?1",
        )
        .bind(id)
        .bind(now_ms)
        .execute(&self.write)
        .await?;
        Ok(found.rows_affected() == 1)
    }

    async fn inbound(&self, id: &str) -> Result<Option<InboundMessage>, StoreError> {
        let row: Option<(String, String, i64, String, Option<i64>)> = sqlx::query_as(
            "SELECT id, sender, received_at, payload, read_at FROM inbound_messages WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(id, from, received_at_ms, payload, read_at_ms)| InboundMessage {
            id,
            from,
            received_at_ms,
            payload,
            read_at_ms,
        }))
    }
}
