//! Batches on SQLite: a loop of prepared statements in the one write transaction, cheap
//! in-process (Postgres sends each batch as arrays in one statement).

use sqlx::{Row, Sqlite};

use super::SqliteStore;
use crate::sql::sandbox::KEEP_OPEN_CONVERSATION;
use crate::tx::Tx;
use crate::{
    CallbackRow, ContactCheck, MessageState, NewMessage, SandboxConversation, StatusPlan,
    StoreError,
};

impl SqliteStore {
    /// Inserts the batch's messages, each on its shard; their `seq`s, in batch order.
    pub(crate) async fn insert_messages(
        tx: &mut Tx<Sqlite>,
        batch: &[NewMessage],
        shards: &[u32],
    ) -> Result<Vec<i64>, StoreError> {
        let mut seqs = Vec::with_capacity(batch.len());
        for (m, shard) in batch.iter().zip(shards) {
            let seq: i64 = sqlx::query_scalar(
                "INSERT INTO messages (id, recipient, recipient_crc, shard, payload, accepted_at, updated_at, callback_data)
                 VALUES ($1, $2, $3, $4, $5, $6, $6, $7) RETURNING seq",
            )
            .bind(&m.id)
            .bind(&m.recipient)
            .bind(i64::from(m.recipient_crc))
            .bind(i64::from(*shard))
            .bind(&m.payload)
            .bind(m.accepted_at_ms)
            .bind(&m.callback_data)
            .fetch_one(tx.conn())
            .await?;
            seqs.push(seq);
        }
        Ok(seqs)
    }

    /// The states of the messages named by `ids` (the write transaction holds them).
    pub(crate) async fn lock_states(
        tx: &mut Tx<Sqlite>,
        ids: &[String],
    ) -> Result<Vec<MessageState>, StoreError> {
        let mut states = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(
                "SELECT id, recipient, recipient_crc, shard, status, callback_data FROM messages WHERE id = $1",
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
        Ok(states)
    }

    /// Writes a status plan: the new statuses, then the callbacks, in plan order.
    pub(crate) async fn write_plan(
        tx: &mut Tx<Sqlite>,
        plan: &StatusPlan,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        for (id, status) in &plan.updates {
            sqlx::query("UPDATE messages SET status = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(status)
                .bind(now_ms)
                .execute(tx.conn())
                .await?;
        }
        for (id, upstream_id) in &plan.upstream_ids {
            sqlx::query("UPDATE messages SET upstream_id = $2 WHERE id = $1")
                .bind(id)
                .bind(upstream_id)
                .execute(tx.conn())
                .await?;
        }
        for c in &plan.callbacks {
            sqlx::query(
                "INSERT INTO callbacks (shard, recipient_crc, message_id, body, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(i64::from(c.shard))
            .bind(i64::from(c.recipient_crc))
            .bind(&c.message_id)
            .bind(&c.body)
            .bind(now_ms)
            .execute(tx.conn())
            .await?;
        }
        Ok(())
    }

    /// `(seq, message_id, body, failures, next_attempt_at, kind)` of the oldest callbacks of
    /// `shards` (passed as a JSON array: SQLite has no array parameters).
    pub(crate) async fn pending_callback_rows(
        &self,
        shards: &[u32],
        limit: u32,
    ) -> Result<Vec<CallbackRow>, StoreError> {
        let shards: Vec<String> = shards.iter().map(u32::to_string).collect();
        let shards = format!("[{}]", shards.join(","));
        Ok(sqlx::query_as(
            "SELECT seq, message_id, body, failures, next_attempt_at, kind FROM callbacks
             WHERE shard IN (SELECT value FROM json_each($1)) ORDER BY seq LIMIT $2",
        )
        .bind(shards)
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?)
    }

    pub(crate) async fn delete_callback_rows(&self, seqs: &[i64]) -> Result<(), StoreError> {
        let mut tx = self.tx().await?;
        for seq in seqs {
            sqlx::query("DELETE FROM callbacks WHERE seq = $1")
                .bind(seq)
                .execute(tx.conn())
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn fail_callback_rows(
        &self,
        seqs: &[i64],
        next_attempt_at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.tx().await?;
        for seq in seqs {
            sqlx::query(
                "UPDATE callbacks SET failures = failures + 1, next_attempt_at = $2 WHERE seq = $1",
            )
            .bind(seq)
            .bind(next_attempt_at_ms)
            .execute(tx.conn())
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn contact_rows(
        &self,
        numbers: &[String],
        fresh_after: i64,
    ) -> Result<Vec<ContactCheck>, StoreError> {
        let mut found = Vec::new();
        let mut conn = self.pool.acquire().await?;
        for number in numbers {
            let row: Option<(Option<String>, i64)> = sqlx::query_as(
                "SELECT wa_id, checked_at FROM contact_checks WHERE number = $1 AND checked_at > $2",
            )
            .bind(number)
            .bind(fresh_after)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some((wa_id, checked_at)) = row {
                found.push(ContactCheck { number: number.clone(), wa_id, checked_at });
            }
        }
        Ok(found)
    }

    /// Opens (or finds open) the conversations of distinct customers, in one transaction.
    pub(crate) async fn upsert_conversations(
        &self,
        openings: &[&(String, SandboxConversation)],
        now_ms: i64,
    ) -> Result<Vec<(String, SandboxConversation)>, StoreError> {
        let mut tx = self.tx().await?;
        let mut open = Vec::with_capacity(openings.len());
        for (wa_id, candidate) in openings {
            let (wa_id, id, user_initiated, expires_ms): (String, String, bool, i64) =
                sqlx::query_as(&format!(
                    "INSERT INTO sandbox_conversations (wa_id, id, user_initiated, expires_ms)
                     VALUES ($1, $2, $3, $4)
                     {KEEP_OPEN_CONVERSATION}"
                ))
                .bind(wa_id)
                .bind(&candidate.id)
                .bind(candidate.user_initiated)
                .bind(candidate.expires_ms)
                .bind(now_ms)
                .fetch_one(tx.conn())
                .await?;
            open.push((wa_id, SandboxConversation { id, user_initiated, expires_ms }));
        }
        tx.commit().await?;
        Ok(open)
    }
}
