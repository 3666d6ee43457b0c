//! What only Postgres can do: a whole batch in one statement, its rows passed as arrays
//! (`UNNEST`, `= ANY`), and writes that lock or check in the same statement (data-modifying
//! CTEs). SQLite passes its batches as JSON arrays and holds the whole database in its write
//! transaction instead.

use std::collections::{HashMap, HashSet};

use premise_base::UnixMs;
use premise_wire::{MessageStatus, shard_of};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, Row};

use super::PgStore;
use crate::model::{enqueued, first_of_each_key, settled_rows, status};
use crate::sql::sandbox::KEEP_OPEN_CONVERSATION;
use crate::store::PlanFn;
use crate::tx::Tx;
use crate::{
    CallbackRow, ContactRow, ConversationOpening, ConversationRow, Credential, Enqueued,
    KeptAnswer, MessageState, NewMessage, Routed, Settled, StatusPlan, StatusUpdate, StoreError,
};

/// Rounds of optimistic recording before the messages still changing under it are locked.
const OPTIMISTIC_ROUNDS: usize = 3;

/// A message's state from a row of `messages`.
fn message_state(r: &PgRow) -> Result<MessageState, StoreError> {
    Ok(MessageState {
        id: r.try_get("id")?,
        seq: r.try_get("seq")?,
        recipient: Routed::stored(r.try_get("recipient")?, r.try_get("recipient_crc")?),
        shard: r.try_get::<i32, _>("shard")?.unsigned_abs(),
        status: status(r.try_get("status")?)?,
        callback_data: r.try_get("callback_data")?,
    })
}

/// A row of the one-statement enqueue: the account as locked (shard count, generation, last
/// `seq` before), its `last_seq` after, and an inserted message's `seq`, id and shard.
type EnqueueRow = (i32, i64, i64, Option<i64>, Option<i64>, Option<String>, Option<i32>);

impl PgStore {
    /// [`crate::Pipeline::enqueue`] in one statement, so one round trip and no BEGIN or COMMIT
    /// of its own: the account row is locked first (every row's shard is computed from the
    /// locked shard count, so no `seq` is drawn before the lock is held), the batch inserted
    /// in order and `last_seq` moved; the lock is held for the statement and its commit only.
    pub(crate) async fn enqueue_batch(&self, batch: &[NewMessage]) -> Result<Enqueued, StoreError> {
        // A key twice in the batch: the later messages are not offered (they are refused).
        let offered: Vec<&NewMessage> = batch
            .iter()
            .zip(first_of_each_key(batch))
            .filter_map(|(m, first)| first.then_some(m))
            .collect();
        let ids: Vec<&str> = offered.iter().map(|m| m.id.as_str()).collect();
        let recipients: Vec<&str> = offered.iter().map(|m| m.recipient.as_str()).collect();
        let crcs: Vec<i64> = offered.iter().map(|m| i64::from(m.recipient.crc())).collect();
        let payloads: Vec<&str> = offered.iter().map(|m| m.payload.as_str()).collect();
        let accepted: Vec<i64> = offered.iter().map(|m| m.accepted_at.ms()).collect();
        let callback_data: Vec<Option<&str>> =
            offered.iter().map(|m| m.callback_data.as_deref()).collect();
        let credential = |field: fn(&Credential) -> &str| -> Vec<Option<&str>> {
            offered.iter().map(|m| m.credential.as_ref().map(field)).collect()
        };
        let usernames = credential(|c| c.username.as_str());
        let user_ids = credential(|c| c.user_id.as_str());
        let jtis = credential(|c| c.jti.as_str());
        let kept = |field: fn(&KeptAnswer) -> &str| -> Vec<Option<&str>> {
            offered.iter().map(|m| m.idempotency.as_ref().map(field)).collect()
        };
        let keys = kept(|k| k.key.as_str());
        let fingerprints = kept(|k| k.fingerprint.as_str());
        let answer_statuses: Vec<Option<i16>> = offered
            .iter()
            .map(|m| m.idempotency.as_ref().map(|k| i16::try_from(k.status).unwrap_or(i16::MAX)))
            .collect();
        let answers: Vec<Option<&[u8]>> =
            offered.iter().map(|m| m.idempotency.as_ref().map(|k| k.body.as_slice())).collect();
        let expiries: Vec<Option<i64>> =
            offered.iter().map(|m| m.idempotency.as_ref().map(|k| k.expires_at.secs())).collect();
        let now_secs = offered.iter().map(|m| m.accepted_at).max().unwrap_or_default().secs();
        // The shard is `wire::shard_of` (the crc modulo the shard count), checked against it
        // below. A row with a credential is offered only if the token still holds, as of this
        // statement: its account exists with the token's id and the token is not revoked. A row
        // with an idempotency key is inserted only if its key was (the key free, or expired);
        // keys are inserted under the account's lock, as messages are, so two batches never
        // wait on each other's keys.
        //
        // `(SELECT $1)`: the planner cannot see into a sub-select, so it no longer counts a
        // batch's rows from the bound array. Planned for each batch's own size, the statement
        // cost more to plan than to run (~280 against ~125 µs at 1–2 messages a batch); with
        // every plan alike, Postgres keeps one generic plan per connection after five runs.
        let mut connection = self.kept().await?;
        let rows: Vec<EnqueueRow> =
            sqlx::query_as(
                "WITH account_row AS (
                     SELECT shards, generation, last_seq FROM account WHERE id = 1 FOR UPDATE),
                 offered AS (
                     SELECT u.* FROM UNNEST((SELECT $1::text[]), $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[],
                                 $7::text[], $8::text[], $9::text[],
                                 $10::text[], $11::text[], $12::smallint[], $13::bytea[], $14::bigint[])
                          WITH ORDINALITY AS u(id, recipient, crc, payload, accepted, callback_data, username, user_id, jti,
                                               key, fingerprint, answer_status, answer, expires_at, n)
                     WHERE u.jti IS NULL
                        OR (EXISTS (SELECT 1 FROM users s WHERE s.username = u.username AND s.id = u.user_id)
                            AND NOT EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = u.jti))),
                 keys AS (
                     INSERT INTO idempotency_keys (key, fingerprint, status, body, expires_at)
                     SELECT o.key, o.fingerprint, o.answer_status, o.answer, o.expires_at
                     FROM offered o CROSS JOIN account_row
                     WHERE o.key IS NOT NULL
                     ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint,
                         status = excluded.status, body = excluded.body, expires_at = excluded.expires_at
                     WHERE idempotency_keys.expires_at <= $15
                     RETURNING key),
                 inserted AS (
                     INSERT INTO messages (id, recipient, recipient_crc, shard, payload, accepted_at, updated_at, callback_data)
                     SELECT u.id, u.recipient, u.crc, u.crc % GREATEST(abs(a.shards), 1), u.payload, u.accepted, u.accepted, u.callback_data
                     FROM offered u
                     CROSS JOIN account_row a
                     WHERE u.key IS NULL OR u.key IN (SELECT key FROM keys)
                     ORDER BY u.n
                     RETURNING seq, id, shard),
                 moved AS (
                     UPDATE account SET last_seq = GREATEST(account.last_seq, (SELECT max(seq) FROM inserted))
                     WHERE id = 1
                     RETURNING last_seq)
                 SELECT a.shards, a.generation, a.last_seq, (SELECT last_seq FROM moved), i.seq, i.id, i.shard
                 FROM account_row a LEFT JOIN inserted i ON TRUE",
            )
            .bind(&ids)
            .bind(&recipients)
            .bind(&crcs)
            .bind(&payloads)
            .bind(&accepted)
            .bind(&callback_data)
            .bind(&usernames)
            .bind(&user_ids)
            .bind(&jtis)
            .bind(&keys)
            .bind(&fingerprints)
            .bind(&answer_statuses)
            .bind(&answers)
            .bind(&expiries)
            .bind(now_secs)
            .fetch_all(connection.conn())
            .await?;
        connection.keep();
        let Some(&(count, generation, previous_seq, last_seq, ..)) = rows.first() else {
            return Err(StoreError::Corrupt("the account row is missing".into()));
        };
        let by_id: HashMap<String, (i64, u32)> = rows
            .into_iter()
            .filter_map(|(.., seq, id, shard)| Some((id?, (seq?, shard?.unsigned_abs()))))
            .collect();
        let last_seq = last_seq.unwrap_or(previous_seq);
        let placed = |_, m: &NewMessage| {
            let placed = by_id.get(&m.id).copied();
            debug_assert!(placed.is_none_or(
                |(_, shard)| shard == shard_of(m.recipient.crc(), count.unsigned_abs())
            ));
            placed
        };
        enqueued(batch, placed, previous_seq, last_seq, generation)
    }

    /// [`crate::Pipeline::record_statuses`], optimistically: the states are read without a
    /// lock and the plan written in one statement that changes each message only if its status
    /// is still the one the plan was made from (and queues its callbacks only then). Two round
    /// trips and no transaction of its own, where locking took five. A message another writer
    /// changed meanwhile is planned again from its new state; after a few such rounds the rest
    /// are recorded the locking way.
    pub(crate) async fn record_batch(
        &self,
        ids: &[String],
        now: UnixMs,
        plan: PlanFn<'_>,
    ) -> Result<(), StoreError> {
        let mut ids = ids.to_vec();
        let mut connection = self.kept().await?;
        for _ in 0..OPTIMISTIC_ROUNDS {
            let states = Self::states(connection.conn(), &ids).await?;
            let read: HashMap<String, i16> =
                states.iter().map(|s| (s.id.clone(), s.status.code())).collect();
            let plan = plan(states);
            ids = Self::write_plan_if_unchanged(connection.conn(), &plan, &read, now).await?;
            if ids.is_empty() {
                connection.keep();
                return Ok(());
            }
        }
        connection.keep();
        self.record_locked(&ids, now, plan).await
    }

    /// The states of the messages named by `ids`, as committed now (no lock).
    async fn states(
        conn: &mut PgConnection,
        ids: &[String],
    ) -> Result<Vec<MessageState>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, id, recipient, recipient_crc, shard, status, callback_data FROM messages
             WHERE id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(conn)
        .await?;
        rows.iter().map(message_state).collect()
    }

    /// Writes `plan` for each message whose status is still the one in `read`, in one
    /// statement: its new status and upstream id, and its callbacks in plan order. Answers the
    /// messages that had changed (nothing of theirs was written).
    async fn write_plan_if_unchanged<'a>(
        conn: &mut PgConnection,
        plan: &'a StatusPlan,
        read: &HashMap<String, i16>,
        now: UnixMs,
    ) -> Result<Vec<String>, StoreError> {
        // One row per message the plan touches: its status as read, and what the plan changes.
        let mut changes: Vec<Change<'_>> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut slot = |id: &'a str| -> Option<usize> {
            let &was = read.get(id)?;
            Some(*index.entry(id).or_insert_with(|| {
                changes.push(Change::of(id, was));
                changes.len() - 1
            }))
        };
        let updates: Vec<(usize, &StatusUpdate)> =
            plan.updates.iter().filter_map(|u| Some((slot(&u.message_id)?, u))).collect();
        let upstream: Vec<(usize, &str)> = plan
            .upstream_ids
            .iter()
            .filter_map(|u| Some((slot(&u.message_id)?, u.upstream_id.as_str())))
            .collect();
        for (i, update) in updates {
            changes[i].update = Some(update);
        }
        for (i, upstream_id) in upstream {
            changes[i].upstream_id = Some(upstream_id);
        }
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = changes.iter().map(|c| c.id).collect();
        let old: Vec<i16> = changes.iter().map(|c| c.was).collect();
        let new: Vec<i16> =
            changes.iter().map(|c| c.update.map_or(c.was, |u| u.status.code())).collect();
        let upstream_ids: Vec<Option<&str>> = changes.iter().map(|c| c.upstream_id).collect();
        let at = |status| -> Vec<Option<i64>> {
            changes.iter().map(|c| c.update.and_then(|u| u.reached_at(status))).collect()
        };
        let (sent, delivered) = (at(MessageStatus::Sent), at(MessageStatus::Delivered));
        let (read_at, failed) = (at(MessageStatus::Read), at(MessageStatus::Failed));
        let errors: Vec<Option<&str>> =
            changes.iter().map(|c| c.update.and_then(|u| u.errors.as_deref())).collect();
        let shards: Vec<i32> = plan.callbacks.iter().map(|c| c.shard.cast_signed()).collect();
        let crcs: Vec<i64> = plan.callbacks.iter().map(|c| i64::from(c.recipient_crc)).collect();
        let callback_ids: Vec<&str> =
            plan.callbacks.iter().map(|c| c.message_id.as_str()).collect();
        let bodies: Vec<&str> = plan.callbacks.iter().map(|c| c.body.as_str()).collect();
        let callback_statuses: Vec<i16> = plan.callbacks.iter().map(|c| c.status.code()).collect();
        let message_seqs: Vec<i64> = plan.callbacks.iter().map(|c| c.message_seq).collect();
        let written: Vec<String> = sqlx::query_scalar(
            "WITH changes AS (
                 SELECT * FROM UNNEST($1::text[], $2::smallint[], $3::smallint[], $4::text[],
                                      $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[],
                                      $15::text[])
                     AS c(id, old, new, upstream_id, sent_at, delivered_at, read_at, failed_at,
                          errors)),
             updated AS (
                 UPDATE messages m
                 SET status = c.new,
                     updated_at = CASE WHEN c.new <> c.old THEN $5 ELSE m.updated_at END,
                     upstream_id = COALESCE(c.upstream_id, m.upstream_id),
                     sent_at = COALESCE(m.sent_at, c.sent_at),
                     delivered_at = COALESCE(m.delivered_at, c.delivered_at),
                     read_at = COALESCE(m.read_at, c.read_at),
                     failed_at = COALESCE(m.failed_at, c.failed_at),
                     errors = COALESCE(c.errors, m.errors)
                 FROM changes c
                 WHERE m.id = c.id AND m.status = c.old
                 RETURNING m.id),
             queued AS (
                 INSERT INTO callbacks
                     (shard, recipient_crc, message_id, body, created_at, status, message_seq)
                 SELECT b.shard, b.crc, b.id, b.body, $5, b.status, b.message_seq
                 FROM UNNEST($6::int[], $7::bigint[], $8::text[], $9::text[], $10::smallint[],
                             $16::bigint[])
                      WITH ORDINALITY AS b(shard, crc, id, body, status, message_seq, n)
                 WHERE b.id IN (SELECT id FROM updated)
                 ORDER BY b.n)
             SELECT id FROM updated",
        )
        .bind(&ids)
        .bind(&old)
        .bind(&new)
        .bind(&upstream_ids)
        .bind(now.ms())
        .bind(&shards)
        .bind(&crcs)
        .bind(&callback_ids)
        .bind(&bodies)
        .bind(&callback_statuses)
        .bind(&sent)
        .bind(&delivered)
        .bind(&read_at)
        .bind(&failed)
        .bind(&errors)
        .bind(&message_seqs)
        .fetch_all(conn)
        .await?;
        let written: HashSet<String> = written.into_iter().collect();
        Ok(ids.iter().filter(|id| !written.contains(**id)).map(|id| (*id).to_owned()).collect())
    }

    /// The states of the messages named by `ids`, locked for the transaction.
    pub(crate) async fn lock_states(
        tx: &mut Tx<Postgres>,
        ids: &[String],
    ) -> Result<Vec<MessageState>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, id, recipient, recipient_crc, shard, status, callback_data FROM messages
             WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(ids)
        .fetch_all(tx.conn())
        .await?;
        rows.iter().map(message_state).collect()
    }

    /// Writes a status plan: the new statuses, then the callbacks, in plan order.
    pub(crate) async fn write_plan(
        tx: &mut Tx<Postgres>,
        plan: &StatusPlan,
        now: UnixMs,
    ) -> Result<(), StoreError> {
        if !plan.updates.is_empty() {
            let ids: Vec<&str> = plan.updates.iter().map(|u| u.message_id.as_str()).collect();
            let statuses: Vec<i16> = plan.updates.iter().map(|u| u.status.code()).collect();
            let at = |status| -> Vec<Option<i64>> {
                plan.updates.iter().map(|u| u.reached_at(status)).collect()
            };
            let errors: Vec<Option<&str>> =
                plan.updates.iter().map(|u| u.errors.as_deref()).collect();
            sqlx::query(
                "UPDATE messages m
                 SET status = u.status, updated_at = $3,
                     sent_at = COALESCE(m.sent_at, u.sent_at),
                     delivered_at = COALESCE(m.delivered_at, u.delivered_at),
                     read_at = COALESCE(m.read_at, u.read_at),
                     failed_at = COALESCE(m.failed_at, u.failed_at),
                     errors = COALESCE(u.errors, m.errors)
                 FROM UNNEST($1::text[], $2::smallint[], $4::bigint[], $5::bigint[], $6::bigint[],
                             $7::bigint[], $8::text[])
                     AS u(id, status, sent_at, delivered_at, read_at, failed_at, errors)
                 WHERE m.id = u.id",
            )
            .bind(&ids)
            .bind(&statuses)
            .bind(now.ms())
            .bind(at(MessageStatus::Sent))
            .bind(at(MessageStatus::Delivered))
            .bind(at(MessageStatus::Read))
            .bind(at(MessageStatus::Failed))
            .bind(&errors)
            .execute(tx.conn())
            .await?;
        }
        if !plan.upstream_ids.is_empty() {
            let (ids, upstream_ids): (Vec<&str>, Vec<&str>) = plan
                .upstream_ids
                .iter()
                .map(|u| (u.message_id.as_str(), u.upstream_id.as_str()))
                .unzip();
            sqlx::query(
                "UPDATE messages m SET upstream_id = u.upstream_id
                 FROM UNNEST($1::text[], $2::text[]) AS u(id, upstream_id) WHERE m.id = u.id",
            )
            .bind(&ids)
            .bind(&upstream_ids)
            .execute(tx.conn())
            .await?;
        }
        if !plan.callbacks.is_empty() {
            let shards: Vec<i32> = plan.callbacks.iter().map(|c| c.shard.cast_signed()).collect();
            let crcs: Vec<i64> =
                plan.callbacks.iter().map(|c| i64::from(c.recipient_crc)).collect();
            let ids: Vec<&str> = plan.callbacks.iter().map(|c| c.message_id.as_str()).collect();
            let bodies: Vec<&str> = plan.callbacks.iter().map(|c| c.body.as_str()).collect();
            let statuses: Vec<i16> = plan.callbacks.iter().map(|c| c.status.code()).collect();
            let message_seqs: Vec<i64> = plan.callbacks.iter().map(|c| c.message_seq).collect();
            sqlx::query(
                "INSERT INTO callbacks
                     (shard, recipient_crc, message_id, body, created_at, status, message_seq)
                 SELECT shard, crc, id, body, $5, status, message_seq
                 FROM UNNEST($1::int[], $2::bigint[], $3::text[], $4::text[], $6::smallint[],
                             $7::bigint[])
                      WITH ORDINALITY AS u(shard, crc, id, body, status, message_seq, n)
                 ORDER BY n",
            )
            .bind(&shards)
            .bind(&crcs)
            .bind(&ids)
            .bind(&bodies)
            .bind(now.ms())
            .bind(&statuses)
            .bind(&message_seqs)
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
        let shards: Vec<i32> = shards.iter().map(|s| s.cast_signed()).collect();
        let mut connection = self.kept().await?;
        let rows = sqlx::query_as(
            "SELECT seq, message_id, body, failures, next_attempt_at, kind, shard, last_error FROM callbacks
             WHERE shard = ANY($1) ORDER BY seq LIMIT $2",
        )
        .bind(&shards)
        .bind(i64::from(limit))
        .fetch_all(connection.conn())
        .await?;
        connection.keep();
        Ok(rows)
    }

    /// [`crate::Pipeline::settle_callbacks`] in one statement: the callbacks delivered (or
    /// given up on) deleted, the failed ones counted, and an attempt logged for each status
    /// callback of either that was still there.
    pub(crate) async fn settle_callback_rows(&self, settled: &[Settled]) -> Result<(), StoreError> {
        let rows = settled_rows(settled);
        let mut connection = self.kept().await?;
        sqlx::query(
            "WITH d AS (
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::int[], $4::int[],
                                      $5::text[], $6::bigint[])
                     AS d(seq, at, http_status, latency_ms, error, retry_at)),
             gone AS (
                 DELETE FROM callbacks c USING d WHERE c.seq = d.seq AND d.retry_at IS NULL
                 RETURNING c.seq, c.message_seq, c.status),
             failed AS (
                 UPDATE callbacks c
                 SET failures = c.failures + 1, next_attempt_at = d.retry_at, last_error = d.error
                 FROM d WHERE c.seq = d.seq AND d.retry_at IS NOT NULL
                 RETURNING c.seq, c.message_seq, c.status)
             INSERT INTO callback_attempts
                 (message_seq, callback_seq, status, at, http_status, latency_ms, error)
             SELECT t.message_seq, t.seq, t.status, d.at, d.http_status, d.latency_ms, d.error
             FROM (SELECT * FROM gone UNION ALL SELECT * FROM failed) t JOIN d ON d.seq = t.seq
             WHERE t.message_seq IS NOT NULL",
        )
        .bind(&rows.seqs)
        .bind(&rows.ats)
        .bind(&rows.http_statuses)
        .bind(&rows.latencies)
        .bind(&rows.errors)
        .bind(&rows.retry_ats)
        .execute(connection.conn())
        .await?;
        connection.keep();
        Ok(())
    }

    pub(crate) async fn contact_rows(
        &self,
        numbers: &[String],
        fresh_after: i64,
    ) -> Result<Vec<ContactRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT number, wa_id, checked_at FROM contact_checks
             WHERE number = ANY($1) AND checked_at > $2",
        )
        .bind(numbers)
        .bind(fresh_after)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Opens (or finds open) the conversations of distinct customers, in one statement: atomic
    /// by itself, so without BEGIN and COMMIT around it.
    pub(crate) async fn upsert_conversations(
        &self,
        openings: &[&ConversationOpening],
        now_ms: i64,
    ) -> Result<Vec<ConversationRow>, StoreError> {
        let wa_ids: Vec<&str> = openings.iter().map(|o| o.wa_id.as_str()).collect();
        let ids: Vec<&str> = openings.iter().map(|o| o.candidate.id.as_str()).collect();
        let user_initiated: Vec<bool> =
            openings.iter().map(|o| o.candidate.user_initiated).collect();
        let expires: Vec<i64> = openings.iter().map(|o| o.candidate.expires.ms()).collect();
        let mut connection = self.kept().await?;
        let rows = sqlx::query_as(&format!(
            "INSERT INTO sandbox_conversations (wa_id, id, user_initiated, expires_ms)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bool[], $4::bigint[])
             {KEEP_OPEN_CONVERSATION}"
        ))
        .bind(&wa_ids)
        .bind(&ids)
        .bind(&user_initiated)
        .bind(&expires)
        .bind(now_ms)
        .fetch_all(connection.conn())
        .await?;
        connection.keep();
        Ok(rows)
    }
}

/// A message a status plan touches, as the optimistic write binds it: its status as read, and
/// the plan's update and upstream id for it.
struct Change<'a> {
    id: &'a str,
    was: i16,
    update: Option<&'a StatusUpdate>,
    upstream_id: Option<&'a str>,
}

impl<'a> Change<'a> {
    fn of(id: &'a str, was: i16) -> Self {
        Self { id, was, update: None, upstream_id: None }
    }
}
