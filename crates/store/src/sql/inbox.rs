//! Messages customers sent: stored when they arrive, their webhook queued with them, marked
//! read by the integration.

use async_trait::async_trait;
use premise_base::UnixMs;
use premise_wire::shard_of;

use super::locking;
use crate::sql::pipeline::shard_index;
use crate::store::Inbox;
use crate::{InboundMessage, NewInbound, StoreError};

const INSERT: &str = "INSERT INTO inbound_messages (id, sender, received_at, payload)
     VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING";

for_each_backend! {
    #[async_trait]
    impl Inbox for Db {
        async fn insert_inbound(
            &self,
            id: &str,
            from: &str,
            received_at: UnixMs,
            payload: &str,
        ) -> Result<bool, StoreError> {
            let mut tx = self.tx().await?;
            let inserted = sqlx::query(INSERT)
                .bind(id)
                .bind(from)
                .bind(received_at.ms())
                .bind(payload)
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
            Ok(inserted.rows_affected() == 1)
        }

        async fn receive_inbound(&self, inbound: &NewInbound) -> Result<bool, StoreError> {
            let mut tx = self.tx().await?;
            // The shard count read under a share lock (on SQLite, in the write transaction): a
            // change of shard count, which moves callbacks, waits for this one, so the webhook
            // never lands on an old shard.
            let read = locking("SELECT shards FROM account WHERE id = 1", Db::FOR_SHARE);
            let (shards,): (i32,) = sqlx::query_as(&read).fetch_one(tx.conn()).await?;
            let inserted = sqlx::query(INSERT)
                .bind(&inbound.id)
                .bind(inbound.from.as_str())
                .bind(inbound.received_at.ms())
                .bind(&inbound.payload)
                .execute(tx.conn())
                .await?;
            if inserted.rows_affected() == 1 {
                // One sender's messages share a callback key, so they arrive in order.
                sqlx::query(
                    "INSERT INTO callbacks (shard, recipient_crc, message_id, body, created_at, kind)
                     VALUES ($1, $2, $3, $4, $5, 1)",
                )
                .bind(shard_index(shard_of(inbound.from.crc(), shards.unsigned_abs()))?)
                .bind(i64::from(inbound.from.crc()))
                .bind(format!("inbound:{}", inbound.from.as_str()))
                .bind(&inbound.webhook)
                .bind(inbound.received_at.ms())
                .execute(tx.conn())
                .await?;
            }
            tx.commit().await?;
            Ok(inserted.rows_affected() == 1)
        }

        async fn mark_inbound_read(&self, id: &str, now: UnixMs) -> Result<bool, StoreError> {
            let mut tx = self.tx().await?;
            let found = sqlx::query(
                "UPDATE inbound_messages SET read_at = COALESCE(read_at, $2) WHERE id = $1",
            )
            .bind(id)
            .bind(now.ms())
            .execute(tx.conn())
            .await?;
            tx.commit().await?;
            Ok(found.rows_affected() == 1)
        }

        async fn inbound(&self, id: &str) -> Result<Option<InboundMessage>, StoreError> {
            let row: Option<(String, String, i64, String, Option<i64>)> = sqlx::query_as(
                "SELECT id, sender, received_at, payload, read_at FROM inbound_messages WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
            Ok(row.map(|(id, from, received_at, payload, read_at)| InboundMessage {
                id,
                from,
                received_at: UnixMs(received_at),
                payload,
                read_at: read_at.map(UnixMs),
            }))
        }
    }
}
