//! The outbound pipeline's state: shard count and settings, the queue, the callback outbox,
//! replicas and shard leases.

use super::locking;
use crate::model::{Account, Node};
use crate::model::{QueueRow, queue_read, shard_backlogs};
use crate::store::PlanFn;
use crate::{
    Backlog, Enqueued, Lease, NewMessage, PendingCallback, Pipeline, QueueRead, Settled,
    ShardBacklog, StoreError, StoredMessage, Unfinished,
};
use std::time::Duration;

use async_trait::async_trait;
use premise_base::{UnixMs, millis};
use premise_wire::MessageStatus;

for_each_backend! {
    impl Db {
        /// Records statuses the locking way: the states read with the messages locked for the
        /// transaction, the plan written in it. SQLite's only way (its write transaction holds
        /// the whole database); Postgres' for messages that kept changing under its optimistic
        /// rounds.
        pub(crate) async fn record_locked(
            &self,
            ids: &[String],
            now: UnixMs,
            plan: PlanFn<'_>,
        ) -> Result<(), StoreError> {
            let mut tx = self.tx().await?;
            let states = Db::lock_states(&mut tx, ids).await?;
            let plan = plan(states);
            Db::write_plan(&mut tx, &plan, now).await?;
            tx.commit().await?;
            Ok(())
        }
    }

    #[async_trait]
    impl Pipeline for Db {
        async fn account(&self) -> Result<Account, StoreError> {
            let (shards, generation): (i32, i64) =
                sqlx::query_as("SELECT shards, generation FROM account WHERE id = 1")
                    .fetch_one(self.reader())
                    .await?;
            Ok(Account { shards: shards.unsigned_abs(), generation })
        }

        async fn set_shards(&self, shards: u32) -> Result<Account, StoreError> {
            let mut tx = self.tx().await?;
            let read = locking("SELECT shards, generation FROM account WHERE id = 1", Db::FOR_UPDATE);
            let (current, generation): (i32, i64) =
                sqlx::query_as(&read).fetch_one(tx.conn()).await?;
            if current.unsigned_abs() == shards {
                tx.commit().await?;
                return Ok(Account { shards, generation });
            }
            let count = i32::try_from(shards).map_err(|_| StoreError::Corrupt("shard count".into()))?;
            // No queued message is below the lowest floor of the shards of this generation:
            // the messages to move are found from it, and it is every new shard's floor.
            let floor: i64 = sqlx::query_scalar(&format!("SELECT {QUEUE_FLOOR}"))
                .fetch_one(tx.conn())
                .await?;
            sqlx::query(
                "UPDATE account SET shards = $1, generation = generation + 1, queue_floor = $2
                 WHERE id = 1",
            )
            .bind(count)
            .bind(floor)
            .execute(tx.conn())
            .await?;
            // Queued messages and waiting callbacks move to their shard under the new count:
            // `premise_wire::shard_of` in SQL, for every row at once.
            sqlx::query("UPDATE messages SET shard = recipient_crc % $1 WHERE seq >= $2 AND status = 0")
                .bind(i64::from(shards))
                .bind(floor)
                .execute(tx.conn())
                .await?;
            sqlx::query("UPDATE callbacks SET shard = recipient_crc % $1")
                .bind(i64::from(shards))
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
            Ok(Account { shards, generation: generation + 1 })
        }

        async fn settings_document(&self) -> Result<Option<String>, StoreError> {
            Ok(sqlx::query_scalar("SELECT document FROM app_settings WHERE id = 1")
                .fetch_optional(self.reader())
                .await?)
        }

        async fn put_settings_document(&self, document: &str) -> Result<(), StoreError> {
            let mut tx = self.tx().await?;
            sqlx::query(
                "INSERT INTO app_settings (id, document) VALUES (1, $1)
                 ON CONFLICT (id) DO UPDATE SET document = excluded.document",
            )
            .bind(document)
            .execute(tx.conn())
            .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn replace_settings_document(
            &self,
            expected: Option<&str>,
            document: &str,
        ) -> Result<bool, StoreError> {
            let mut tx = self.tx().await?;
            let replaced = match expected {
                Some(expected) => sqlx::query(
                    "UPDATE app_settings SET document = $2 WHERE id = 1 AND document = $1",
                )
                .bind(expected)
                .bind(document),
                None => sqlx::query(
                    "INSERT INTO app_settings (id, document) VALUES (1, $2)
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind("")
                .bind(document),
            }
            .execute(tx.conn())
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(replaced == 1)
        }

        async fn enqueue(&self, batch: &[NewMessage]) -> Result<Enqueued, StoreError> {
            // The account row lock (on SQLite, the write transaction itself) serialises
            // enqueues, across replicas too, and shard-count changes: `seq` values are then
            // handed out in commit order, so a shard worker that has read up to some `seq` can
            // never later find an older row appear behind it (which would let a recipient's
            // next message overtake the previous one). Batching makes the serial commits cheap:
            // each one carries everything that arrived meanwhile. How the lock is taken, the
            // rows inserted and `last_seq` moved is each backend's own (`enqueue_batch`).
            self.enqueue_batch(batch).await
        }

        async fn queued(
            &self,
            shard: u32,
            generation: i64,
            after_seq: i64,
            limit: u32,
        ) -> Result<QueueRead, StoreError> {
            // One statement, one snapshot: the account's `last_seq` read with the rows says how
            // far they cover the shard. The shard's floor bounds the walk along its index from
            // below: a worker that starts (at 0) skips what earlier owners settled.
            let rows: Vec<QueueRow> = sqlx::query_as(
                "SELECT m.seq, m.id, m.recipient, m.payload, a.last_seq
                 FROM account a
                 LEFT JOIN (
                     SELECT seq, id, recipient, payload FROM messages
                     WHERE shard = $1 AND seq > $2 AND status = 0
                       AND seq >= COALESCE(
                           (SELECT queue_floor FROM shard_leases WHERE shard = $1 AND generation = $4),
                           (SELECT queue_floor FROM account WHERE id = 1))
                     ORDER BY seq LIMIT $3) m ON TRUE
                 WHERE a.id = 1 AND a.generation = $4
                 ORDER BY m.seq",
            )
            .bind(shard_index(shard)?)
            .bind(after_seq)
            .bind(i64::from(limit))
            .bind(generation)
            .fetch_all(self.reader())
            .await?;
            Ok(queue_read(rows, after_seq, limit))
        }

        async fn committed_through(&self) -> Result<i64, StoreError> {
            Ok(sqlx::query_scalar("SELECT last_seq FROM account WHERE id = 1")
                .fetch_one(self.reader())
                .await?)
        }

        async fn backlog(&self) -> Result<Backlog, StoreError> {
            let (queued, callbacks): (i64, i64) = sqlx::query_as(&format!(
                "SELECT (SELECT count(*) FROM messages WHERE seq >= {QUEUE_FLOOR} AND status = 0),
                        (SELECT count(*) FROM callbacks)"
            ))
            .fetch_one(self.reader())
            .await?;
            Ok(Backlog { queued: queued.unsigned_abs(), callbacks: callbacks.unsigned_abs() })
        }

        async fn shard_backlogs(&self) -> Result<Vec<ShardBacklog>, StoreError> {
            // The oldest queued message of a shard is its lowest `seq` (acceptance order), found
            // from the floor on; only those rows are read for their acceptance time.
            let queued: Vec<(i32, i64, i64)> = sqlx::query_as(&format!(
                "SELECT q.shard, q.depth, m.accepted_at FROM
                   (SELECT shard, count(*) AS depth, min(seq) AS first FROM messages
                    WHERE seq >= {QUEUE_FLOOR} AND status = 0 GROUP BY shard) q
                 JOIN messages m ON m.seq = q.first"
            ))
            .fetch_all(self.reader())
            .await?;
            let callbacks: Vec<(i32, i64)> =
                sqlx::query_as("SELECT shard, count(*) FROM callbacks GROUP BY shard")
                    .fetch_all(self.reader())
                    .await?;
            Ok(shard_backlogs(queued, callbacks))
        }

        async fn record_statuses(
            &self,
            ids: &[String],
            now: UnixMs,
            plan: PlanFn<'_>,
        ) -> Result<(), StoreError> {
            // How the messages are kept from changing between the read and the write is each
            // backend's own (`record_batch`).
            self.record_batch(ids, now, plan).await
        }

        async fn unfinished(&self, shard: u32, limit: u32) -> Result<Vec<Unfinished>, StoreError> {
            let rows: Vec<(String, i16, i64, String)> = sqlx::query_as(
                "SELECT id, status, updated_at, recipient FROM messages
                 WHERE shard = $1 AND status IN (1, 2) ORDER BY seq LIMIT $2",
            )
            .bind(shard_index(shard)?)
            .bind(i64::from(limit))
            .fetch_all(self.reader())
            .await?;
            Ok(rows
                .into_iter()
                .filter_map(|(message_id, code, since, recipient)| {
                    let status = MessageStatus::from_code(code)?;
                    Some(Unfinished { message_id, recipient, status, since: UnixMs(since) })
                })
                .collect())
        }

        async fn message(&self, id: &str) -> Result<Option<StoredMessage>, StoreError> {
            let row: Option<(String, i16)> =
                sqlx::query_as("SELECT payload, status FROM messages WHERE id = $1")
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await?;
            let Some((payload, code)) = row else { return Ok(None) };
            let status = MessageStatus::from_code(code).ok_or_else(|| {
                StoreError::Corrupt(format!("message {id} has an unknown status {code}"))
            })?;
            Ok(Some(StoredMessage { payload, status }))
        }

        async fn pending_callbacks(
            &self,
            shards: &[u32],
            limit: u32,
        ) -> Result<Vec<PendingCallback>, StoreError> {
            let rows = self.pending_callback_rows(shards, limit).await?;
            Ok(rows
                .into_iter()
                .map(|(seq, message_id, body, failures, next, kind, shard, last_error)| PendingCallback {
                    seq,
                    shard: shard.unsigned_abs(),
                    message_id,
                    body,
                    inbound: kind == 1,
                    failures: failures.unsigned_abs(),
                    next_attempt_at: UnixMs(next),
                    last_error,
                })
                .collect())
        }

        async fn settle_callbacks(&self, settled: &[Settled]) -> Result<(), StoreError> {
            if settled.iter().all(|s| s.seqs.is_empty()) {
                return Ok(());
            }
            self.settle_callback_rows(settled).await
        }

        async fn heartbeat(
            &self,
            node: &str,
            at: Option<UnixMs>,
            alive_within: Duration,
            stats: &str,
        ) -> Result<Vec<Node>, StoreError> {
            let mut tx = self.tx().await?;
            let heartbeat_at: i64 = sqlx::query_scalar(&format!(
                "INSERT INTO nodes (node, started_at, heartbeat_at, stats)
                 VALUES ($1, COALESCE($2, {DB_NOW_MS}), COALESCE($2, {DB_NOW_MS}), $3)
                 ON CONFLICT (node) DO UPDATE
                 SET heartbeat_at = excluded.heartbeat_at, stats = excluded.stats
                 RETURNING heartbeat_at"
            ))
            .bind(node)
            .bind(at.map(UnixMs::ms))
            .bind(stats)
            .fetch_one(tx.conn())
            .await?;
            tx.commit().await?;
            let rows: Vec<(String, i64, Option<String>)> = sqlx::query_as(
                "SELECT node, heartbeat_at, stats FROM nodes WHERE heartbeat_at >= $1 ORDER BY node",
            )
            .bind(heartbeat_at - millis(alive_within))
            .fetch_all(self.reader())
            .await?;
            Ok(rows
                .into_iter()
                .map(|(node, heartbeat_at, stats)| Node {
                    node,
                    heartbeat_at: UnixMs(heartbeat_at),
                    stats,
                })
                .collect())
        }

        async fn database_time(&self) -> Result<UnixMs, StoreError> {
            let now: i64 =
                sqlx::query_scalar(&format!("SELECT {DB_NOW_MS}")).fetch_one(self.reader()).await?;
            Ok(UnixMs(now))
        }

        async fn leave(&self, node: &str) -> Result<(), StoreError> {
            let mut tx = self.tx().await?;
            sqlx::query("DELETE FROM nodes WHERE node = $1").bind(node).execute(tx.conn()).await?;
            tx.commit().await?;
            Ok(())
        }

        async fn acquire_lease(
            &self,
            shard: u32,
            owner: &str,
            generation: i64,
            at: Option<UnixMs>,
            ttl: Duration,
        ) -> Result<Option<Lease>, StoreError> {
            let mut tx = self.tx().await?;
            // A shard taken in a new generation starts from the floor the change set; one
            // taken over within its generation keeps the floor its last owner reached.
            let now = format!("COALESCE($4, {DB_NOW_MS})");
            let epoch: Option<i64> = sqlx::query_scalar(&format!(
                "INSERT INTO shard_leases (shard, owner, epoch, generation, expires_at, queue_floor)
                 SELECT $1, $2, 1, $3, {now} + $5, queue_floor FROM account
                 WHERE id = 1 AND generation = $3
                   AND NOT EXISTS (SELECT 1 FROM shard_leases WHERE generation < $3 AND expires_at > {now})
                 ON CONFLICT (shard) DO UPDATE SET owner = excluded.owner, epoch = shard_leases.epoch + 1,
                     generation = excluded.generation, expires_at = excluded.expires_at,
                     queue_floor = CASE WHEN shard_leases.generation = excluded.generation
                                        THEN shard_leases.queue_floor ELSE excluded.queue_floor END
                 WHERE shard_leases.expires_at <= {now}
                 RETURNING epoch",
            ))
            .bind(shard_index(shard)?)
            .bind(owner)
            .bind(generation)
            .bind(at.map(UnixMs::ms))
            .bind(millis(ttl))
            .fetch_optional(tx.conn())
            .await?;
            tx.commit().await?;
            Ok(epoch.map(|epoch| Lease { shard, epoch, generation }))
        }

        async fn renew_lease(
            &self,
            lease: &Lease,
            owner: &str,
            at: Option<UnixMs>,
            ttl: Duration,
            queue_floor: i64,
        ) -> Result<bool, StoreError> {
            let mut tx = self.tx().await?;
            let now = format!("COALESCE($4, {DB_NOW_MS})");
            let renewed = sqlx::query(&format!(
                "UPDATE shard_leases SET expires_at = {now} + $5, {}
                 WHERE shard = $1 AND owner = $2 AND epoch = $3 AND expires_at > {now}",
                raise_floor("$6")
            ))
            .bind(shard_index(lease.shard)?)
            .bind(owner)
            .bind(lease.epoch)
            .bind(at.map(UnixMs::ms))
            .bind(millis(ttl))
            .bind(queue_floor)
            .execute(tx.conn())
            .await?;
            tx.commit().await?;
            Ok(renewed.rows_affected() == 1)
        }

        async fn release_lease(
            &self,
            lease: &Lease,
            owner: &str,
            queue_floor: i64,
        ) -> Result<(), StoreError> {
            let mut tx = self.tx().await?;
            sqlx::query(&format!(
                "UPDATE shard_leases SET expires_at = 0, {}
                 WHERE shard = $1 AND owner = $2 AND epoch = $3",
                raise_floor("$4")
            ))
            .bind(shard_index(lease.shard)?)
            .bind(owner)
            .bind(lease.epoch)
            .bind(queue_floor)
            .execute(tx.conn())
            .await?;
            tx.commit().await?;
            Ok(())
        }
    }
}

/// Sets a lease's `queue_floor` to the parameter `param` if that is higher: it never falls.
fn raise_floor(param: &str) -> String {
    format!("queue_floor = CASE WHEN queue_floor < {param} THEN {param} ELSE queue_floor END")
}

/// The lowest `seq` a queued message can have: the lowest floor of the current generation's
/// shards, or the account's (set by the last change of the shard count) while a shard has
/// none of its own yet.
const QUEUE_FLOOR: &str = "(SELECT CASE WHEN count(l.shard) = a.shards THEN min(l.queue_floor)
                                  ELSE min(a.queue_floor) END
      FROM account a
      LEFT JOIN shard_leases l ON l.generation = a.generation AND l.shard < a.shards
      WHERE a.id = 1 GROUP BY a.shards)";

/// A shard number as its `INTEGER` column holds it.
pub(crate) fn shard_index(shard: u32) -> Result<i32, StoreError> {
    i32::try_from(shard).map_err(|_| StoreError::Corrupt(format!("shard {shard}")))
}
