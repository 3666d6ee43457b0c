//! The pipeline's SQL on Postgres: arrays (`UNNEST`) make every batch one statement.

use async_trait::async_trait;
use sqlx::Row;

use super::PgStore;
use crate::{
    Account, Backlog, Enqueued, Lease, MessageState, NewMessage, Node, PendingCallback, Pipeline,
    PlanFn, QueueRead, ShardBacklog, StoreError,
};

#[async_trait]
impl Pipeline for PgStore {
    async fn account(&self) -> Result<Account, StoreError> {
        let (shards, generation): (i32, i64) =
            sqlx::query_as("SELECT shards, generation FROM account WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok(Account { shards: shards.unsigned_abs(), generation })
    }

    async fn set_shards(&self, shards: u32) -> Result<Account, StoreError> {
        let mut tx = self.tx().await?;
        let (current, generation): (i32, i64) =
            sqlx::query_as("SELECT shards, generation FROM account WHERE id = 1 FOR UPDATE")
                .fetch_one(tx.conn())
                .await?;
        if current.unsigned_abs() == shards {
            tx.commit().await?;
            return Ok(Account { shards, generation });
        }
        let shards_i = i64::from(shards);
        sqlx::query("UPDATE account SET shards = $1, generation = generation + 1 WHERE id = 1")
            .bind(shards_i as i32)
            .execute(tx.conn())
            .await?;
        sqlx::query("UPDATE messages SET shard = recipient_crc % $1 WHERE status = 0")
            .bind(shards_i)
            .execute(tx.conn())
            .await?;
        sqlx::query("UPDATE callbacks SET shard = recipient_crc % $1")
            .bind(shards_i)
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
        sqlx::query(
            "INSERT INTO app_settings (id, document) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET document = excluded.document",
        )
        .bind(document)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn enqueue(&self, batch: &[NewMessage]) -> Result<Enqueued, StoreError> {
        let mut tx = self.tx().await?;
        // The account row lock serialises enqueues (across replicas too) and shard-count
        // changes: `seq` values are then handed out in commit order, so a shard worker that
        // has read up to some `seq` can never later find an older row appear behind it (which
        // would let a recipient's next message overtake the previous one). Batching makes the
        // serial commits cheap: each one carries everything that arrived meanwhile.
        let (shards, generation, previous_seq): (i32, i64, i64) = sqlx::query_as(
            "SELECT shards, generation, last_seq FROM account WHERE id = 1 FOR UPDATE",
        )
        .fetch_one(tx.conn())
        .await?;
        let shards = shards.unsigned_abs().max(1);
        let ids: Vec<&str> = batch.iter().map(|m| m.id.as_str()).collect();
        let recipients: Vec<&str> = batch.iter().map(|m| m.recipient.as_str()).collect();
        let crcs: Vec<i64> = batch.iter().map(|m| i64::from(m.recipient_crc)).collect();
        let shard_of: Vec<i32> = batch.iter().map(|m| (m.recipient_crc % shards) as i32).collect();
        let payloads: Vec<&str> = batch.iter().map(|m| m.payload.as_str()).collect();
        let accepted: Vec<i64> = batch.iter().map(|m| m.accepted_at_ms).collect();
        let callback_data: Vec<Option<&str>> =
            batch.iter().map(|m| m.callback_data.as_deref()).collect();
        // `n` numbers the rows in batch order; the RETURNING rows' order is not promised, so
        // they are matched back by it.
        let seqs: Vec<(i64, i64)> = sqlx::query_as(
            "WITH inserted AS (
                 INSERT INTO messages (id, recipient, recipient_crc, shard, payload, accepted_at, updated_at, callback_data)
                 SELECT id, recipient, crc, shard, payload, accepted, accepted, callback_data
                 FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::int[], $5::text[], $6::bigint[], $7::text[])
                      WITH ORDINALITY AS u(id, recipient, crc, shard, payload, accepted, callback_data, n)
                 ORDER BY n
                 RETURNING seq, id)
             SELECT inserted.seq, u.n FROM inserted
             JOIN UNNEST($1::text[]) WITH ORDINALITY AS u(id, n) ON u.id = inserted.id",
        )
        .bind(&ids)
        .bind(&recipients)
        .bind(&crcs)
        .bind(&shard_of)
        .bind(&payloads)
        .bind(&accepted)
        .bind(&callback_data)
        .fetch_all(tx.conn())
        .await?;
        let mut seq_of = vec![0i64; batch.len()];
        for (seq, n) in seqs {
            if let Some(slot) = usize::try_from(n - 1).ok().and_then(|i| seq_of.get_mut(i)) {
                *slot = seq;
            }
        }
        let last_seq = seq_of.iter().copied().max().unwrap_or(previous_seq).max(previous_seq);
        sqlx::query("UPDATE account SET last_seq = $1 WHERE id = 1")
            .bind(last_seq)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(crate::model::enqueued(batch, &seq_of, &shard_of, previous_seq, last_seq, generation))
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
                 LEFT JOIN LATERAL (
                     SELECT seq, id, recipient, payload FROM messages
                     WHERE shard = $1 AND status = 0 AND seq > $2
                     ORDER BY seq LIMIT $3) m ON true
                 WHERE a.id = 1 AND a.generation = $4
                 ORDER BY m.seq",
        )
        .bind(shard as i32)
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
        let queued: Vec<(i32, i64, i64)> = sqlx::query_as(
            "SELECT q.shard, q.depth, m.accepted_at FROM
               (SELECT shard, count(*) AS depth, min(seq) AS first FROM messages
                WHERE status = 0 GROUP BY shard) q
             JOIN messages m ON m.seq = q.first",
        )
        .fetch_all(&self.pool)
        .await?;
        let callbacks: Vec<(i32, i64)> =
            sqlx::query_as("SELECT shard, count(*) FROM callbacks GROUP BY shard")
                .fetch_all(&self.pool)
                .await?;
        let queued = queued.into_iter().map(|(s, d, o)| (i64::from(s), d, o)).collect();
        let callbacks = callbacks.into_iter().map(|(s, c)| (i64::from(s), c)).collect();
        Ok(crate::model::shard_backlogs(queued, callbacks))
    }

    async fn record_statuses(
        &self,
        ids: &[String],
        now_ms: i64,
        plan: PlanFn<'_>,
    ) -> Result<(), StoreError> {
        let mut tx = self.tx().await?;
        let rows = sqlx::query(
            "SELECT id, recipient, recipient_crc, shard, status, callback_data FROM messages
             WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(ids)
        .fetch_all(tx.conn())
        .await?;
        let states = rows
            .iter()
            .map(|r| {
                Ok(MessageState {
                    id: r.try_get("id")?,
                    recipient: r.try_get("recipient")?,
                    recipient_crc: u32::try_from(r.try_get::<i64, _>("recipient_crc")?)
                        .unwrap_or_default(),
                    shard: r.try_get::<i32, _>("shard")?.unsigned_abs(),
                    status: r.try_get("status")?,
                    callback_data: r.try_get("callback_data")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let plan = plan(states);
        if !plan.updates.is_empty() {
            let (ids, statuses): (Vec<&str>, Vec<i16>) =
                plan.updates.iter().map(|(id, s)| (id.as_str(), *s)).unzip();
            sqlx::query(
                "UPDATE messages m SET status = u.status, updated_at = $3
                 FROM UNNEST($1::text[], $2::smallint[]) AS u(id, status) WHERE m.id = u.id",
            )
            .bind(&ids)
            .bind(&statuses)
            .bind(now_ms)
            .execute(tx.conn())
            .await?;
        }
        if !plan.callbacks.is_empty() {
            let shards: Vec<i32> = plan.callbacks.iter().map(|c| c.shard as i32).collect();
            let crcs: Vec<i64> =
                plan.callbacks.iter().map(|c| i64::from(c.recipient_crc)).collect();
            let ids: Vec<&str> = plan.callbacks.iter().map(|c| c.message_id.as_str()).collect();
            let bodies: Vec<&str> = plan.callbacks.iter().map(|c| c.body.as_str()).collect();
            sqlx::query(
                "INSERT INTO callbacks (shard, recipient_crc, message_id, body, created_at)
                 SELECT shard, crc, id, body, $5
                 FROM UNNEST($1::int[], $2::bigint[], $3::text[], $4::text[]) WITH ORDINALITY AS u(shard, crc, id, body, n)
                 ORDER BY n",
            )
            .bind(&shards)
            .bind(&crcs)
            .bind(&ids)
            .bind(&bodies)
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
            "SELECT id, status, updated_at, recipient FROM messages WHERE shard = $1 AND status IN (1, 2) ORDER BY seq LIMIT $2",
        )
        .bind(shard as i32)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn message(&self, id: &str) -> Result<Option<(String, i16)>, StoreError> {
        Ok(sqlx::query_as("SELECT payload, status FROM messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn pending_callbacks(
        &self,
        shard: u32,
        limit: u32,
    ) -> Result<Vec<PendingCallback>, StoreError> {
        let rows: Vec<(i64, String, String, i32, i64, i16)> = sqlx::query_as(
            "SELECT seq, message_id, body, failures, next_attempt_at, kind FROM callbacks
             WHERE shard = $1 ORDER BY seq LIMIT $2",
        )
        .bind(shard as i32)
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
                failures: failures.unsigned_abs(),
                next_attempt_at_ms: next,
            })
            .collect())
    }

    async fn delete_callbacks(&self, seqs: &[i64]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM callbacks WHERE seq = ANY($1)")
            .bind(seqs)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn callbacks_failed(
        &self,
        seqs: &[i64],
        next_attempt_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE callbacks SET failures = failures + 1, next_attempt_at = $2 WHERE seq = ANY($1)")
            .bind(seqs)
            .bind(next_attempt_at_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn heartbeat(
        &self,
        node: &str,
        now_ms: i64,
        alive_since_ms: i64,
    ) -> Result<Vec<Node>, StoreError> {
        sqlx::query(
            "INSERT INTO nodes (node, started_at, heartbeat_at) VALUES ($1, $2, $2)
             ON CONFLICT (node) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(node)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT node, heartbeat_at FROM nodes WHERE heartbeat_at >= $1 ORDER BY node",
        )
        .bind(alive_since_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(node, heartbeat_at_ms)| Node { node, heartbeat_at_ms }).collect())
    }

    async fn leave(&self, node: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM nodes WHERE node = $1").bind(node).execute(&self.pool).await?;
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
        let epoch: Option<i64> = sqlx::query_scalar(
            "INSERT INTO shard_leases (shard, owner, epoch, generation, expires_at)
             SELECT $1, $2, 1, $3, $4 + $5
             WHERE $3 = (SELECT generation FROM account WHERE id = 1)
               AND NOT EXISTS (SELECT 1 FROM shard_leases WHERE generation < $3 AND expires_at > $4)
             ON CONFLICT (shard) DO UPDATE SET owner = excluded.owner, epoch = shard_leases.epoch + 1,
                 generation = excluded.generation, expires_at = excluded.expires_at
             WHERE shard_leases.expires_at <= $4
             RETURNING epoch",
        )
        .bind(shard as i32)
        .bind(owner)
        .bind(generation)
        .bind(now_ms)
        .bind(ttl_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(epoch.map(|epoch| Lease { shard, epoch, generation }))
    }

    async fn renew_lease(
        &self,
        lease: &Lease,
        owner: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE shard_leases SET expires_at = $4 + $5
             WHERE shard = $1 AND owner = $2 AND epoch = $3 AND expires_at > $4",
        )
        .bind(lease.shard as i32)
        .bind(owner)
        .bind(lease.epoch)
        .bind(now_ms)
        .bind(ttl_ms)
        .execute(&self.pool)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn release_lease(&self, lease: &Lease, owner: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE shard_leases SET expires_at = 0 WHERE shard = $1 AND owner = $2 AND epoch = $3",
        )
        .bind(lease.shard as i32)
        .bind(owner)
        .bind(lease.epoch)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
