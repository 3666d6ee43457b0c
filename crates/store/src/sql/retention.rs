//! Retention: deleting what is finished, in batches, and leases of jobs one replica runs.
//!
//! Every delete picks at most `limit` rows (by a subquery, or for messages a page of `seq`s) and
//! deletes them by key, so a batch is one short write whatever the table's size. The delete
//! states the conditions itself: on Postgres, a row changed by a concurrent transaction is
//! judged again on its new version (a `sent` message whose `read` was just recorded is kept).

use std::time::Duration;

use async_trait::async_trait;
use premise_base::UnixMs;

use crate::store::Retention;
use crate::{Expired, MessagePurge, PurgedPage, StoreError};

/// When the oldest callback still waiting was written (Unix ms), or the largest time if none:
/// a message or inbound message that last changed before it has no callback waiting.
const OLDEST_WAITING_CALLBACK: &str =
    "COALESCE((SELECT min(created_at) FROM callbacks), 9223372036854775807)";

for_each_backend! {
    #[async_trait]
    impl Retention for Db {
        async fn hold_job(
            &self,
            job: &str,
            owner: &str,
            now: UnixMs,
            ttl: Duration,
        ) -> Result<bool, StoreError> {
            let mut tx = self.tx().await?;
            let held = sqlx::query(
                "INSERT INTO job_leases (name, owner, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE
                 SET owner = excluded.owner, expires_at = excluded.expires_at
                 WHERE job_leases.owner = excluded.owner OR job_leases.expires_at <= $4",
            )
            .bind(job)
            .bind(owner)
            .bind(now.plus(ttl).ms())
            .bind(now.ms())
            .execute(tx.conn())
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(held == 1)
        }

        async fn purge_messages(
            &self,
            walk: &MessagePurge,
            limit: u32,
        ) -> Result<PurgedPage, StoreError> {
            let mut tx = self.tx().await?;
            let page: Vec<(i64, i64, i16, i64)> = sqlx::query_as(
                "SELECT seq, accepted_at, status, updated_at FROM messages
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(walk.after_seq)
            .bind(i64::from(limit))
            .fetch_all(tx.conn())
            .await?;
            let oldest_callback: i64 = sqlx::query_scalar(&format!("SELECT {OLDEST_WAITING_CALLBACK}"))
                .fetch_one(tx.conn())
                .await?;
            let due: Vec<_> =
                page.iter().take_while(|(_, accepted, _, _)| *accepted <= walk.accepted_through.ms()).collect();
            let through_seq = due.last().map_or(walk.after_seq, |(seq, ..)| *seq);
            let more = page.len() == limit as usize && due.len() == page.len();
            // What stays only for now, to be looked at again: queued, owed a callback, or
            // recent (an older message that cannot go yet waits for the offline window).
            let first_kept_seq = due
                .iter()
                .find(|(_, accepted, status, updated_at)| {
                    let finished = match status {
                        0 => return true,
                        1 | 2 => *updated_at <= walk.unconfirmed_before.ms(),
                        _ => *updated_at <= walk.finished_before.ms(),
                    };
                    let owed = *updated_at >= oldest_callback;
                    owed || (!finished && *accepted > walk.recent_after.ms())
                })
                .map(|(seq, ..)| *seq);
            let deleted = if through_seq > walk.after_seq {
                // The oldest waiting callback as read above: one written since belongs to a
                // status change, which the row's own `updated_at` shows.
                let deleted = sqlx::query(
                    "DELETE FROM messages WHERE seq > $1 AND seq <= $2
                     AND ((status IN (3, 4) AND updated_at <= $3) OR (status IN (1, 2) AND updated_at <= $4))
                     AND updated_at < $5",
                )
                .bind(walk.after_seq)
                .bind(through_seq)
                .bind(walk.finished_before.ms())
                .bind(walk.unconfirmed_before.ms())
                .bind(oldest_callback)
                .execute(tx.conn())
                .await?
                .rows_affected();
                // And the delivery attempts of the messages gone, found by their `seq`.
                sqlx::query(
                    "DELETE FROM callback_attempts
                     WHERE message_seq > $1 AND message_seq <= $2
                       AND NOT EXISTS (SELECT 1 FROM messages WHERE seq = message_seq)",
                )
                .bind(walk.after_seq)
                .bind(through_seq)
                .execute(tx.conn())
                .await?;
                deleted
            } else {
                0
            };
            tx.commit().await?;
            Ok(PurgedPage { deleted, through_seq, more, first_kept_seq })
        }

        async fn purge_inbound(&self, before: UnixMs, limit: u32) -> Result<u64, StoreError> {
            let condition =
                format!("received_at <= $1 AND received_at < {OLDEST_WAITING_CALLBACK}");
            let messages = self
                .delete_batch("inbound_messages", "id", &condition, "received_at", before.ms(), limit)
                .await?;
            let journal = "received_at <= $1 AND processed_at IS NOT NULL";
            let webhooks = self
                .delete_batch("cloud_webhooks", "id", journal, "received_at", before.ms(), limit)
                .await?;
            Ok(messages + webhooks)
        }

        async fn purge_media(&self, before: UnixMs, limit: u32) -> Result<u64, StoreError> {
            let mut tx = self.tx().await?;
            let ids: Vec<String> = sqlx::query_scalar(
                "SELECT id FROM media WHERE complete AND created_at <= $1
                 ORDER BY created_at LIMIT $2",
            )
            .bind(before.secs())
            .bind(i64::from(limit))
            .fetch_all(tx.conn())
            .await?;
            for id in &ids {
                for table in ["media_chunks", "cloud_media"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE media_id = $1"))
                        .bind(id)
                        .execute(tx.conn())
                        .await?;
                }
                sqlx::query("DELETE FROM media WHERE id = $1").bind(id).execute(tx.conn()).await?;
            }
            tx.commit().await?;
            Ok(ids.len() as u64)
        }

        async fn purge_expired(&self, expired: &Expired, limit: u32) -> Result<u64, StoreError> {
            let statements = [
                // Columns in seconds, then in milliseconds.
                ("contact_checks", "number", "checked_at <= $1", expired.contacts_before.secs()),
                ("idempotency_keys", "key", "expires_at <= $1", expired.now.secs()),
                ("revoked_tokens", "jti", "expires_at < $1", expired.now.secs()),
                ("login_failures", "client", "window_started_at <= $1", expired.logins_before.secs()),
                ("sandbox_windows", "wa_id", "last_inbound_ms < $1", expired.windows_before.ms()),
                ("sandbox_conversations", "wa_id", "expires_ms < $1", expired.windows_before.ms()),
            ];
            let mut deleted = 0;
            for (table, key, condition, cutoff) in statements {
                deleted += self.delete_batch(table, key, condition, key, cutoff, limit).await?;
            }
            Ok(deleted)
        }
    }

    impl Db {
        /// Deletes at most `limit` rows of `table` meeting `condition` (`$1` is `cutoff`), in
        /// `order`, by `key`, in a transaction of its own; the condition is repeated outside the
        /// subquery so that a row changed meanwhile is judged on its new version.
        async fn delete_batch(
            &self,
            table: &str,
            key: &str,
            condition: &str,
            order: &str,
            cutoff: i64,
            limit: u32,
        ) -> Result<u64, StoreError> {
            let mut tx = self.tx().await?;
            let deleted = sqlx::query(&format!(
                "DELETE FROM {table} WHERE {key} IN
                   (SELECT {key} FROM {table} WHERE {condition} ORDER BY {order} LIMIT $2)
                 AND {condition}"
            ))
            .bind(cutoff)
            .bind(i64::from(limit))
            .execute(tx.conn())
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(deleted)
        }
    }
}
