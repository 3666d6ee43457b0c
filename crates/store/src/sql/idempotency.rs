//! `Idempotency-Key`s. A key is the table's primary key, so one answer is kept per key: on
//! Postgres, of two concurrent inserts one waits for the other's commit and then finds the key
//! taken; on SQLite every write is on the single writer. A sent message's key is inserted by
//! the statement that stores the message (`enqueue`), with the same rule.

use async_trait::async_trait;

use premise_base::UnixMs;

use crate::{Idempotency, KeptAnswer, StoreError};

/// Inserts a key's answer unless the key holds one not yet expired (an expired one is
/// replaced): `$1` key, `$2` fingerprint, `$3` status, `$4` body, `$5` expires at, `$6` now.
pub(crate) const KEEP_ANSWER: &str =
    "INSERT INTO idempotency_keys (key, fingerprint, status, body, expires_at)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint, status = excluded.status,
         body = excluded.body, expires_at = excluded.expires_at
     WHERE idempotency_keys.expires_at <= $6";

for_each_backend! {
    #[async_trait]
    impl Idempotency for Db {
        async fn kept_answer(
            &self,
            key: &str,
            now: UnixMs,
        ) -> Result<Option<KeptAnswer>, StoreError> {
            let row: Option<(String, i16, Vec<u8>, i64)> = sqlx::query_as(
                "SELECT fingerprint, status, body, expires_at FROM idempotency_keys
                 WHERE key = $1 AND expires_at > $2",
            )
            .bind(key)
            .bind(now.secs())
            .fetch_optional(&self.pool)
            .await?;
            row.map(|(fingerprint, status, body, expires_at)| {
                Ok(KeptAnswer {
                    key: key.to_owned(),
                    fingerprint,
                    status: u16::try_from(status)
                        .map_err(|_| StoreError::Corrupt(format!("idempotency status {status}")))?,
                    body,
                    expires_at: UnixMs::from_secs(expires_at),
                })
            })
            .transpose()
        }

        async fn keep_answer(&self, answer: &KeptAnswer, now: UnixMs) -> Result<bool, StoreError> {
            let mut tx = self.tx().await?;
            let kept = sqlx::query(KEEP_ANSWER)
                .bind(&answer.key)
                .bind(&answer.fingerprint)
                .bind(i16::try_from(answer.status).unwrap_or(i16::MAX))
                .bind(&answer.body)
                .bind(answer.expires_at.secs())
                .bind(now.secs())
                .execute(tx.conn())
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(kept == 1)
        }
    }
}
