//! Batches on SQLite: SQLite has no array parameters, so a batch's rows are passed as one JSON
//! array and read back with `json_each`, one statement per batch as on Postgres. (A loop of
//! statements is not cheap even in-process: sqlx runs each connection on a thread of its own,
//! and every statement is a round trip to it.)

use std::collections::HashMap;

use premise_base::UnixMs;
use premise_wire::{MessageStatus, shard_of};
use serde::Serialize;
use sqlx::{Row, Sqlite};

use super::SqliteStore;
use crate::model::{enqueued, first_of_each_key, settled_rows, status};
use crate::sql::sandbox::KEEP_OPEN_CONVERSATION;
use crate::store::PlanFn;
use crate::tx::Tx;
use crate::{
    CallbackRow, ContactRow, ConversationOpening, ConversationRow, Enqueued, MessageState,
    NewMessage, Routed, Settled, StatusPlan, StoreError,
};

impl SqliteStore {
    /// [`crate::Pipeline::enqueue`]: in the write transaction (which holds the whole database),
    /// reads the shard count and the last `seq`, inserts the batch (each message whose
    /// credential still holds) and moves `last_seq`.
    pub(crate) async fn enqueue_batch(&self, batch: &[NewMessage]) -> Result<Enqueued, StoreError> {
        let mut tx = self.tx().await?;
        let (count, generation, previous_seq): (i32, i64, i64) =
            sqlx::query_as("SELECT shards, generation, last_seq FROM account WHERE id = 1")
                .fetch_one(tx.conn())
                .await?;
        let shards: Vec<u32> =
            batch.iter().map(|m| shard_of(m.recipient.crc(), count.unsigned_abs())).collect();
        let seqs = Self::insert_messages(&mut tx, batch, &shards).await?;
        let last_seq = seqs.values().copied().max().unwrap_or(previous_seq).max(previous_seq);
        sqlx::query("UPDATE account SET last_seq = $1 WHERE id = 1")
            .bind(last_seq)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        enqueued(
            batch,
            |i, m| Some((*seqs.get(&m.id)?, shards[i])),
            previous_seq,
            last_seq,
            generation,
        )
    }

    /// Inserts the batch's messages, each on its shard, but those whose credential no longer
    /// holds (its account gone or of another id, or its token revoked) and those whose
    /// idempotency key is held already (or comes twice in the batch); the `seq` of each message
    /// inserted, by id. One statement for the keys and one for the messages: rows are inserted
    /// in the order of the array, so `seq` follows batch order.
    async fn insert_messages(
        tx: &mut Tx<Sqlite>,
        batch: &[NewMessage],
        shards: &[u32],
    ) -> Result<HashMap<String, i64>, StoreError> {
        let offered = first_of_each_key(batch);
        let offered =
            || batch.iter().zip(shards).zip(&offered).filter(|(_, o)| **o).map(|(m, _)| m);
        let keyed: Vec<_> = offered()
            .filter_map(|(m, _)| {
                let k = m.idempotency.as_ref()?;
                let credential = m.credential.as_ref();
                Some((
                    &k.key,
                    &k.fingerprint,
                    k.status,
                    String::from_utf8_lossy(&k.body),
                    k.expires_at.secs(),
                    credential.map(|c| &c.username),
                    credential.map(|c| &c.user_id),
                    credential.map(|c| &c.jti),
                ))
            })
            .collect();
        let keys: Vec<String> = if keyed.is_empty() {
            Vec::new()
        } else {
            let now_secs = batch.iter().map(|m| m.accepted_at).max().unwrap_or_default().secs();
            sqlx::query_scalar(
                "INSERT INTO idempotency_keys (key, fingerprint, status, body, expires_at)
                 SELECT value ->> 0, value ->> 1, value ->> 2, CAST(value ->> 3 AS BLOB), value ->> 4
                 FROM json_each($1)
                 WHERE value ->> 7 IS NULL
                    OR (EXISTS (SELECT 1 FROM users s WHERE s.username = value ->> 5 AND s.id = value ->> 6)
                        AND NOT EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = value ->> 7))
                 ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint,
                     status = excluded.status, body = excluded.body, expires_at = excluded.expires_at
                 WHERE idempotency_keys.expires_at <= $2
                 RETURNING key",
            )
            .bind(json_rows(keyed))
            .bind(now_secs)
            .fetch_all(tx.conn())
            .await?
        };
        let rows = json_rows(offered().map(|(m, shard)| {
            let credential = m.credential.as_ref();
            (
                &m.id,
                m.recipient.as_str(),
                m.recipient.crc(),
                shard,
                &m.payload,
                m.accepted_at.ms(),
                &m.callback_data,
                credential.map(|c| &c.username),
                credential.map(|c| &c.user_id),
                credential.map(|c| &c.jti),
                m.idempotency.as_ref().map(|k| &k.key),
            )
        }));
        let inserted: Vec<(i64, String)> = sqlx::query_as(
            "INSERT INTO messages (id, recipient, recipient_crc, shard, payload, accepted_at, updated_at, callback_data)
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 5, value ->> 6
             FROM json_each($1)
             WHERE (value ->> 9 IS NULL
                    OR (EXISTS (SELECT 1 FROM users s WHERE s.username = value ->> 7 AND s.id = value ->> 8)
                        AND NOT EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = value ->> 9)))
               AND (value ->> 10 IS NULL OR value ->> 10 IN (SELECT value FROM json_each($2)))
             ORDER BY key
             RETURNING seq, id",
        )
        .bind(rows)
        .bind(json_rows(keys))
        .fetch_all(tx.conn())
        .await?;
        // RETURNING's order is not promised: the rows are matched back by id.
        Ok(inserted.into_iter().map(|(seq, id)| (id, seq)).collect())
    }

    /// [`crate::Pipeline::record_statuses`]: the write transaction holds the whole database
    /// from the read of the states to the write of the plan.
    pub(crate) async fn record_batch(
        &self,
        ids: &[String],
        now: UnixMs,
        plan: PlanFn<'_>,
    ) -> Result<(), StoreError> {
        self.record_locked(ids, now, plan).await
    }

    /// The states of the messages named by `ids` (the write transaction holds them).
    pub(crate) async fn lock_states(
        tx: &mut Tx<Sqlite>,
        ids: &[String],
    ) -> Result<Vec<MessageState>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, id, recipient, recipient_crc, shard, status, callback_data FROM messages
             WHERE id IN (SELECT value FROM json_each($1)) ORDER BY id",
        )
        .bind(json_rows(ids))
        .fetch_all(tx.conn())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MessageState {
                    id: r.try_get("id")?,
                    seq: r.try_get("seq")?,
                    recipient: Routed::stored(r.try_get("recipient")?, r.try_get("recipient_crc")?),
                    shard: u32::try_from(r.try_get::<i64, _>("shard")?).unwrap_or_default(),
                    status: status(r.try_get("status")?)?,
                    callback_data: r.try_get("callback_data")?,
                })
            })
            .collect()
    }

    /// Writes a status plan: the new statuses, then the callbacks, in plan order.
    pub(crate) async fn write_plan(
        tx: &mut Tx<Sqlite>,
        plan: &StatusPlan,
        now: UnixMs,
    ) -> Result<(), StoreError> {
        if !plan.updates.is_empty() {
            let rows = plan.updates.iter().map(|u| {
                (
                    &u.message_id,
                    u.status.code(),
                    u.reached_at(MessageStatus::Sent),
                    u.reached_at(MessageStatus::Delivered),
                    u.reached_at(MessageStatus::Read),
                    u.reached_at(MessageStatus::Failed),
                    &u.errors,
                )
            });
            sqlx::query(
                "UPDATE messages
                 SET status = u.value ->> 1, updated_at = $2,
                     sent_at = COALESCE(sent_at, u.value ->> 2),
                     delivered_at = COALESCE(delivered_at, u.value ->> 3),
                     read_at = COALESCE(read_at, u.value ->> 4),
                     failed_at = COALESCE(failed_at, u.value ->> 5),
                     errors = COALESCE(u.value ->> 6, errors)
                 FROM json_each($1) AS u WHERE messages.id = u.value ->> 0",
            )
            .bind(json_rows(rows))
            .bind(now.ms())
            .execute(tx.conn())
            .await?;
        }
        if !plan.upstream_ids.is_empty() {
            sqlx::query(
                "UPDATE messages SET upstream_id = u.value ->> 1
                 FROM json_each($1) AS u WHERE messages.id = u.value ->> 0",
            )
            .bind(json_rows(plan.upstream_ids.iter().map(|u| (&u.message_id, &u.upstream_id))))
            .execute(tx.conn())
            .await?;
        }
        if !plan.callbacks.is_empty() {
            let rows = json_rows(plan.callbacks.iter().map(|c| {
                (c.shard, c.recipient_crc, &c.message_id, &c.body, c.status.code(), c.message_seq)
            }));
            sqlx::query(
                "INSERT INTO callbacks
                     (shard, recipient_crc, message_id, body, created_at, status, message_seq)
                 SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, $2, value ->> 4,
                        value ->> 5
                 FROM json_each($1) ORDER BY key",
            )
            .bind(rows)
            .bind(now.ms())
            .execute(tx.conn())
            .await?;
        }
        Ok(())
    }

    /// `(seq, message_id, body, failures, next_attempt_at, kind, shard, last_error)` of the
    /// oldest callbacks of `shards`.
    pub(crate) async fn pending_callback_rows(
        &self,
        shards: &[u32],
        limit: u32,
    ) -> Result<Vec<CallbackRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT seq, message_id, body, failures, next_attempt_at, kind, shard, last_error FROM callbacks
             WHERE shard IN (SELECT value FROM json_each($1)) ORDER BY seq LIMIT $2",
        )
        .bind(json_rows(shards))
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?)
    }

    /// [`crate::Pipeline::settle_callbacks`] in one transaction: an attempt logged for each
    /// status callback still there, then the delivered (or given up on) deleted and the failed
    /// counted.
    pub(crate) async fn settle_callback_rows(&self, settled: &[Settled]) -> Result<(), StoreError> {
        let rows = settled_rows(settled);
        let rows = json_rows((0..rows.seqs.len()).map(|i| {
            (
                rows.seqs[i],
                rows.ats[i],
                rows.http_statuses[i],
                rows.latencies[i],
                rows.errors[i],
                rows.retry_ats[i],
            )
        }));
        let mut tx = self.tx().await?;
        sqlx::query(
            "INSERT INTO callback_attempts
                 (message_seq, callback_seq, status, at, http_status, latency_ms, error)
             SELECT c.message_seq, c.seq, c.status, d.value ->> 1, d.value ->> 2, d.value ->> 3,
                    d.value ->> 4
             FROM json_each($1) AS d JOIN callbacks c ON c.seq = d.value ->> 0
             WHERE c.message_seq IS NOT NULL
             ORDER BY d.key",
        )
        .bind(&rows)
        .execute(tx.conn())
        .await?;
        sqlx::query(
            "DELETE FROM callbacks WHERE seq IN
               (SELECT value ->> 0 FROM json_each($1) WHERE value ->> 5 IS NULL)",
        )
        .bind(&rows)
        .execute(tx.conn())
        .await?;
        sqlx::query(
            "UPDATE callbacks
             SET failures = failures + 1, next_attempt_at = d.value ->> 5, last_error = d.value ->> 4
             FROM json_each($1) AS d
             WHERE callbacks.seq = d.value ->> 0 AND d.value ->> 5 IS NOT NULL",
        )
        .bind(&rows)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn contact_rows(
        &self,
        numbers: &[String],
        fresh_after: i64,
    ) -> Result<Vec<ContactRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT number, wa_id, checked_at FROM contact_checks
             WHERE number IN (SELECT value FROM json_each($1)) AND checked_at > $2",
        )
        .bind(json_rows(numbers))
        .bind(fresh_after)
        .fetch_all(self.reader())
        .await?)
    }

    /// Opens (or finds open) the conversations of distinct customers, in one transaction.
    pub(crate) async fn upsert_conversations(
        &self,
        openings: &[&ConversationOpening],
        now_ms: i64,
    ) -> Result<Vec<ConversationRow>, StoreError> {
        let mut tx = self.tx().await?;
        let mut open = Vec::with_capacity(openings.len());
        for opening in openings {
            let candidate = &opening.candidate;
            let row: ConversationRow = sqlx::query_as(&format!(
                "INSERT INTO sandbox_conversations (wa_id, id, user_initiated, expires_ms)
                 VALUES ($1, $2, $3, $4)
                 {KEEP_OPEN_CONVERSATION}"
            ))
            .bind(&opening.wa_id)
            .bind(&candidate.id)
            .bind(candidate.user_initiated)
            .bind(candidate.expires.ms())
            .bind(now_ms)
            .fetch_one(tx.conn())
            .await?;
            open.push(row);
        }
        tx.commit().await?;
        Ok(open)
    }
}

/// The rows as one JSON array, each row an array (a tuple) or a value, for `json_each`.
fn json_rows<T: Serialize>(rows: impl IntoIterator<Item = T>) -> String {
    let rows: Vec<T> = rows.into_iter().collect();
    serde_json::to_string(&rows).expect("rows of strings and numbers serialise")
}
