//! Inbound messages on SQLite.

use async_trait::async_trait;

use super::SqliteStore;
use crate::{InboundMessage, Inbox, NewInbound, StoreError};

#[async_trait]
impl Inbox for SqliteStore {
    async fn insert_inbound(
        &self,
        id: &str,
        from: &str,
        received_at_ms: i64,
        payload: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO inbound_messages (id, sender, received_at, payload) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(from)
        .bind(received_at_ms)
        .bind(payload)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn receive_inbound(&self, inbound: &NewInbound) -> Result<bool, StoreError> {
        let mut tx = self.tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO inbound_messages (id, sender, received_at, payload) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&inbound.id)
        .bind(&inbound.from)
        .bind(inbound.received_at_ms)
        .bind(&inbound.payload)
        .execute(tx.conn())
        .await?;
        if inserted.rows_affected() != 1 {
            return Ok(false);
        }
        // The shard count read in the same write transaction as the insert, so a concurrent
        // change of shard count (which moves callbacks) cannot leave it on an old shard.
        sqlx::query(
            "INSERT INTO callbacks (shard, recipient_crc, message_id, body, created_at, kind)
             SELECT ?1 % shards, ?1, ?2, ?3, ?4, 1 FROM account WHERE id = 1",
        )
        .bind(i64::from(inbound.from_crc))
        .bind(format!("inbound:{}", inbound.from))
        .bind(&inbound.webhook)
        .bind(inbound.received_at_ms)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn mark_inbound_read(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let mut tx = self.tx().await?;
        let found = sqlx::query(
            "UPDATE inbound_messages SET read_at = COALESCE(read_at, ?2) WHERE id = ?1",
        )
        .bind(id)
        .bind(now_ms)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
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
