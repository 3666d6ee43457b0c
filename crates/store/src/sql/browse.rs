//! What the console reads: pages of messages by `seq` (the primary key), messages by id with
//! their history, and "retry now" for a waiting callback.

use std::time::Duration;

use async_trait::async_trait;
use premise_base::UnixMs;
use premise_wire::MessageStatus;

use crate::model::status;
use crate::store::Browse;
use crate::{
    Attempt, CallbackAttempt, InboundMessage, MessageHistory, MessagePage, MessageSummary,
    StoreError,
};

/// Ids looked up in one statement at most (a page shows a few dozen).
const LOOKUP_CHUNK: usize = 200;

const COLUMNS: &str = "seq, id, recipient, status, accepted_at, updated_at, upstream_id";

type SummaryRow = (i64, String, String, i16, i64, i64, Option<String>);

fn summary(
    (seq, id, recipient, code, accepted_at, updated_at, upstream_id): SummaryRow,
) -> Result<MessageSummary, StoreError> {
    Ok(MessageSummary {
        seq,
        id,
        recipient,
        status: status(code)?,
        accepted_at: UnixMs(accepted_at),
        updated_at: UnixMs(updated_at),
        upstream_id,
    })
}

for_each_backend! {
    #[async_trait]
    impl Browse for Db {
        async fn messages_page(
            &self,
            page: &MessagePage,
        ) -> Result<Vec<MessageSummary>, StoreError> {
            // Only the conditions given, so each search's statement is planned for what it
            // asks (prepared statements are planned once, without their values).
            let mut query = sqlx::QueryBuilder::<Database>::new(format!(
                "SELECT {COLUMNS} FROM messages WHERE TRUE"
            ));
            if let Some(seq) = page.before_seq {
                query.push(" AND seq < ").push_bind(seq);
            }
            if let Some(recipient) = &page.recipient {
                query.push(" AND recipient = ").push_bind(recipient.clone());
            }
            if let Some(status) = page.status {
                query.push(" AND status = ").push_bind(status.code());
            }
            if let Some(id) = &page.id {
                query.push(" AND (id = ").push_bind(id.clone());
                query.push(" OR upstream_id = ").push_bind(id.clone()).push(")");
            }
            if let Some(at) = page.accepted_by {
                query.push(" AND accepted_at <= ").push_bind(at.ms());
            }
            query.push(" ORDER BY seq DESC LIMIT ").push_bind(i64::from(page.limit));
            let rows: Vec<SummaryRow> = query.build_query_as().fetch_all(self.reader()).await?;
            rows.into_iter().map(summary).collect()
        }

        async fn message_summaries(
            &self,
            ids: &[String],
        ) -> Result<Vec<MessageSummary>, StoreError> {
            let mut found = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(LOOKUP_CHUNK) {
                let placeholders: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
                let statement = format!(
                    "SELECT {COLUMNS} FROM messages WHERE id IN ({})",
                    placeholders.join(", ")
                );
                let mut query = sqlx::query_as::<_, SummaryRow>(&statement);
                for id in chunk {
                    query = query.bind(id);
                }
                for row in query.fetch_all(self.reader()).await? {
                    found.push(summary(row)?);
                }
            }
            Ok(found)
        }

        async fn inbound_page(
            &self,
            from: Option<&str>,
            before: Option<UnixMs>,
            limit: u32,
        ) -> Result<Vec<InboundMessage>, StoreError> {
            let mut query = sqlx::QueryBuilder::<Database>::new(
                "SELECT id, sender, received_at, payload, read_at FROM inbound_messages WHERE TRUE",
            );
            if let Some(from) = from {
                query.push(" AND sender = ").push_bind(from.to_owned());
            }
            if let Some(before) = before {
                query.push(" AND received_at < ").push_bind(before.ms());
            }
            query.push(" ORDER BY received_at DESC, id DESC LIMIT ").push_bind(i64::from(limit));
            let rows: Vec<(String, String, i64, String, Option<i64>)> =
                query.build_query_as().fetch_all(self.reader()).await?;
            Ok(rows
                .into_iter()
                .map(|(id, from, received_at, payload, read_at)| InboundMessage {
                    id,
                    from,
                    received_at: UnixMs(received_at),
                    payload,
                    read_at: read_at.map(UnixMs),
                })
                .collect())
        }

        async fn retry_callback(&self, seq: i64, at: UnixMs) -> Result<bool, StoreError> {
            let mut tx = self.tx().await?;
            let changed = sqlx::query("UPDATE callbacks SET next_attempt_at = $2 WHERE seq = $1")
                .bind(seq)
                .bind(at.ms())
                .execute(tx.conn())
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(changed == 1)
        }

        async fn message_history(&self, id: &str) -> Result<Option<MessageHistory>, StoreError> {
            let row: Option<Times> = sqlx::query_as(
                "SELECT seq, sent_at, delivered_at, read_at, failed_at, errors FROM messages
                 WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
            let Some((seq, sent, delivered, read, failed, errors)) = row else { return Ok(None) };
            let attempts: Vec<AttemptRow> = sqlx::query_as(
                "SELECT callback_seq, status, at, http_status, latency_ms, error
                 FROM callback_attempts WHERE message_seq = $1
                 ORDER BY at, callback_seq LIMIT $2",
            )
            .bind(seq)
            .bind(i64::from(ATTEMPTS_SHOWN))
            .fetch_all(self.reader())
            .await?;
            let mut reached: Vec<(MessageStatus, UnixMs)> = [
                (MessageStatus::Sent, sent),
                (MessageStatus::Delivered, delivered),
                (MessageStatus::Read, read),
                (MessageStatus::Failed, failed),
            ]
            .into_iter()
            .filter_map(|(status, at)| Some((status, UnixMs(at?))))
            .collect();
            reached.sort_by_key(|(status, at)| (*at, *status));
            let attempts = attempts.into_iter().map(attempt).collect::<Result<_, _>>()?;
            Ok(Some(MessageHistory { reached, errors, attempts }))
        }
    }
}

/// A message's `seq`, status times (sent, delivered, read, failed) and errors.
type Times = (i64, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<String>);
/// `(callback_seq, status, at, http_status, latency_ms, error)`.
type AttemptRow = (i64, Option<i16>, i64, Option<i32>, i32, Option<String>);

/// Delivery attempts a message's page shows at most (a receiver down for long retries often).
const ATTEMPTS_SHOWN: u32 = 500;

fn attempt(
    (callback_seq, code, at, http_status, latency_ms, error): AttemptRow,
) -> Result<CallbackAttempt, StoreError> {
    Ok(CallbackAttempt {
        callback_seq,
        status: code.map(status).transpose()?,
        attempt: Attempt {
            at: UnixMs(at),
            http_status: http_status.and_then(|s| u16::try_from(s).ok()),
            latency: Duration::from_millis(u64::try_from(latency_ms).unwrap_or_default()),
            error,
        },
    })
}
