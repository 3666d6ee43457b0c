//! The pipeline's SQL on SQLite. Every write goes through the single writer connection, so a
//! batch is a loop of prepared statements inside one transaction: cheap in-process.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::{
    Account, Backlog, Enqueued, Lease, MessageState, NewMessage, Node, PendingCallback, Pipeline,
    PlanFn, QueueRead, ShardBacklog, StoreError,
};

#[async_trait]
impl Pipeline for SqliteStore {
    async fn account(&self) -> Result<Account, StoreError> {
        let (shards, generation): (i64, i64) =
            sqlx::query_as("SELECT shards, generation FROM account WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok(Account { shards: u32::try_from(shards).unwrap_or(1), generation })
    }

    async fn set_shards(&self, shards: u32) -> Result<Account, StoreError> {
        let mut tx = self.tx().await?;
        let (current, generation): (i64, i64) =
            sqlx::query_as("SELECT shards, generation FROM account WHERE id = 1")
                .fetch_one(tx.conn())
                .await?;
        if current == i64::from(shards) {
            tx.commit().await?;
            return Ok(Account { shards, generation });
        }
        sqlx::query("UPDATE account SET shards = ?1, generation = generation + 1 WHERE id = 1")
            .bind(i64::from(shards))
            .execute(tx.conn())
            .await?;
        sqlx::query("UPDATE messages SET shard = recipient_crc % ?1 WHERE status = 0")
            .bind(i64::from(shards))
            .execute(tx.conn())
            .await?;
        sqlx::query("UPDATE callbacks SET shard = recipient_crc % ?1")
            .bind(i64::from(shards))
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(Account { shards, generation: generation + 1 })
    }

    async fn settings_document(&self) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT document FROM app_settings WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn put_settings_document(&self, document: &str) -> Result<(), StoreError> {
        let mut tx = self.tx().await?;
        sqlx::query(
            "INSERT INTO app_settings (id, document) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET document = excluded.document",
        )
        .bind(document)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn enqueue(&self, batch: &[NewMessage]) -> Result<Enqueued, StoreError> {
        // One writer connection: transactions are serial, so `seq` order is commit order.
        let mut tx = self.tx().await?;
        let (shards, generation, previous_seq): (i64, i64, i64) =
            sqlx::query_as("SELECT shards, generation, last_seq FROM account WHERE id = 1")
                .fetch_one(tx.conn())
                .await?;
        let shards = shards.max(1);
        let mut seqs = Vec::with_capacity(batch.len());
        let mut shard_of = Vec::with_capacity(batch.len());
        for m in batch {
            let crc = i64::from(m.recipient_crc);
            let shard = crc % shards;
            let seq: i64 = sqlx::query_scalar(
                "INSERT INTO messages (id, recipient, recipient_crc, shard, payload, accepted_at, updated_at, callback_data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7) RETURNING seq",
            )
            .bind(&m.id)
            .bind(&m.recipient)
            .bind(crc)
            .bind(shard)
            .bind(&m.payload)
            .bind(m.accepted_at_ms)
            .bind(&m.callback_data)
            .fetch_one(tx.conn())
            .await?;
            seqs.push(seq);
            shard_of.push(shard as i32);
        }
        let last_seq = seqs.iter().copied().max().unwrap_or(previous_seq).max(previous_seq);
        sqlx::query("UPDATE account SET last_seq = ?1 WHERE id = 1")
            .bind(last_seq)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(crate::model::enqueued(batch, &seqs, &shard_of, previous_seq, last_seq, generation))
    }

    async fn queued(
        &self,
        shard: u32,
        generation: i64,
        after_seq: i64,
        limit: u32,
    ) -> Result<QueueRead, StoreError> {
        // One statement, one snapshot: the account's `last_seq` read with the rows says how far
        // they cover the shard.
        let rows: Vec<crate::model::QueueRow> = sqlx::query_as(
            "SELECT m.seq, m.id, m.recipient, m.payload, a.last_seq
                 FROM account a
                 LEFT JOIN (
                     SELECT seq, id, recipient, payload FROM messages
                     WHERE shard = ?1 AND status = 0 AND seq > ?2
                     ORDER BY seq LIMIT ?3) m ON 1
                 WHERE a.id = 1 AND a.generation = ?4
                 ORDER BY m.seq",
        )
        .bind(i64::from(shard))
        .bind(after_seq)
        .bind(i64::from(limit))
        .bind(generation)
        .fetch_all(&self.pool)
        .await?;
        Ok(crate::model::queue_read(rows, after_seq, limit))
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        let (queued, callbacks): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM messages WHERE status = 0), (SELECT count(*) FROM callbacks)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Backlog { queued: queued.unsigned_abs(), callbacks: callbacks.unsigned_abs() })
    }

    async fn shard_backlogs(&self) -> Result<Vec<ShardBacklog>, StoreError> {
        // The oldest queued message of a shard is its lowest `seq` (acceptance order), found
        // on the queue index; only those rows are read for their acceptance time.
        let queued: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT q.shard, q.depth, m.accepted_at FROM
               (SELECT shard, count(*) AS depth, min(seq) AS first FROM messages
                WHERE status = 0 GROUP BY shard) q
             JOIN messages m ON m.seq = q.first",
        )
        .fetch_all(&self.pool)
        .await?;
        let callbacks: Vec<(i64, i64)> =
            sqlx::query_as("SELECT shard, count(*) FROM callbacks GROUP BY shard")
                .fetch_all(&self.pool)
                .await?;
        Ok(crate::model::shard_backlogs(queued, callbacks))
    }

    async fn record_statuses(
        &self,
        ids: &[String],
        now_ms: i64,
        plan: PlanFn<'_>,
    ) -> Result<(), StoreError> {
        let mut tx = self.tx().await?;
        let mut states = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(
                "SELECT id, recipient, recipient_crc, shard, status, callback_data FROM messages WHERE id = ?1",
            )
            .bind(id)
            .fetch_optional(tx.conn())
            .await?;
            if let Some(r) = row {
                states.push(MessageState {
                    id: r.try_get("id")?,
                    recipient: r.try_get("recipient")?,
                    recipient_crc: u32::try_from(r.try_get::<i64, _>("recipient_crc")?)
                        .unwrap_or_default(),
                    shard: u32::try_from(r.try_get::<i64, _>("shard")?).unwrap_or_default(),
                    status: r.try_get("status")?,
                    callback_data: r.try_get("callback_data")?,
                });
            }
        }
        let plan = plan(states);
        for (id, status) in &plan.updates {
            sqlx::query("UPDATE messages SET status = ?2, updated_at = ?3 WHERE id = ?1")
                .bind(id)
                .bind(status)
                .bind(now_ms)
                .execute(tx.conn())
                .await?;
        }
        for c in &plan.callbacks {
            sqlx::query(
                "INSERT INTO callbacks (shard, recipient_crc, message_id, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(i64::from(c.shard))
            .bind(i64::from(c.recipient_crc))
            .bind(&c.message_id)
            .bind(&c.body)
            .bind(now_ms)
            .execute(tx.conn())
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn unfinished(
        &self,
        shard: u32,
        limit: u32,
    ) -> Result<Vec<(String, i16, i64, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, status, updated_at, recipient FROM messages WHERE shard = ?1 AND status IN (1, 2) ORDER BY seq LIMIT ?2",
        )
        .bind(i64::from(shard))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn message(&self, id: &str) -> Result<Option<(String, i16)>, StoreError> {
        Ok(sqlx::query_as("SELECT payload, status FROM messages WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn pending_callbacks(
        &self,
        shard: u32,
        limit: u32,
    ) -> Result<Vec<PendingCallback>, StoreError> {
        let rows: Vec<(i64, String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT seq, message_id, body, failures, next_attempt_at, kind FROM callbacks
             WHERE shard = ?1 ORDER BY seq LIMIT ?2",
        )
        .bind(i64::from(shard))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, message_id, body, failures, next, kind)| PendingCallback {
                seq,
                message_id,
                body,
                inbound: kind == 1,
                failures: u32::try_from(failures).unwrap_or(u32::MAX),
                next_attempt_at_ms: next,
            })
            .collect())
    }

    async fn delete_callbacks(&self, seqs: &[i64]) -> Result<(), StoreError> {
        let mut tx = self.tx().await?;
        for seq in seqs {
            sqlx::query("DELETE FROM callbacks WHERE seq = ?1")
                .bind(seq)
                .execute(tx.conn())
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn callbacks_failed(
        &self,
        seqs: &[i64],
        next_attempt_at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.tx().await?;
        for seq in seqs {
            sqlx::query(
                "UPDATE callbacks SET failures = failures + 1, next_attempt_at = ?2 WHERE seq = ?1",
            )
            .bind(seq)
            .bind(next_attempt_at_ms)
            .execute(tx.conn())
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn heartbeat(
        &self,
        node: &str,
        now_ms: i64,
        alive_since_ms: i64,
    ) -> Result<Vec<Node>, StoreError> {
        let mut tx = self.tx().await?;
        sqlx::query(
            "INSERT INTO nodes (node, started_at, heartbeat_at) VALUES (?1, ?2, ?2)
             ON CONFLICT (node) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(node)
        .bind(now_ms)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT node, heartbeat_at FROM nodes WHERE heartbeat_at >= ?1 ORDER BY node",
        )
        .bind(alive_since_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(node, heartbeat_at_ms)| Node { node, heartbeat_at_ms }).collect())
    }

    async fn leave(&self, node: &str) -> Result<(), StoreError> {
        let mut tx = self.tx().await?;
        sqlx::query("DELETE FROM nodes WHERE node = ?1").bind(node).execute(tx.conn()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn acquire_lease(
        &self,
        shard: u32,
        owner: &str,
        generation: i64,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Option<Lease>, StoreError> {
        let mut tx = self.tx().await?;
        let epoch: Option<i64> = sqlx::query_scalar(
            "INSERT INTO shard_leases (shard, owner, epoch, generation, expires_at)
             SELECT ?1, ?2, 1, ?3, ?4 + ?5
             WHERE ?3 = (SELECT generation FROM account WHERE id = 1)
               AND NOT EXISTS (SELECT 1 FROM shard_leases WHERE generation < ?3 AND expires_at > ?4)
             ON CONFLICT (shard) DO UPDATE SET owner = excluded.owner, epoch = shard_leases.epoch + 1,
                 generation = excluded.generation, expires_at = excluded.expires_at
             WHERE shard_leases.expires_at <= ?4
             RETURNING epoch",
        )
        .bind(i64::from(shard))
        .bind(owner)
        .bind(generation)
        .bind(now_ms)
        .bind(ttl_ms)
        .fetch_optional(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(epoch.map(|epoch| Lease { shard, epoch, generation }))
    }

    async fn renew_lease(
        &self,
        lease: &Lease,
        owner: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tx().await?;
        let renewed = sqlx::query(
            "UPDATE shard_leases SET expires_at = ?4 + ?5
             WHERE shard = ?1 AND owner = ?2 AND epoch = ?3 AND expires_at > ?4",
        )
        .bind(i64::from(lease.shard))
        .bind(owner)
        .bind(lease.epoch)
        .bind(now_ms)
        .bind(ttl_ms)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn release_lease(&self, lease: &Lease, owner: &str) -> Result<(), StoreError> {
        let mut tx = self.tx().await?;
        sqlx::query(
            "UPDATE shard_leases SET expires_at = 0 WHERE shard = ?1 AND owner = ?2 AND epoch = ?3",
        )
        .bind(i64::from(lease.shard))
        .bind(owner)
        .bind(lease.epoch)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
