//! `Idempotency-Key`s. A key is the table's primary key: on Postgres, of two concurrent
//! inserts one waits for the other's commit and then finds the key taken; on SQLite the
//! reservation is one write transaction on the single writer. Either way only one request
//! reserves a key.

use async_trait::async_trait;

use crate::model::classify;
use crate::{Idempotency, Reservation, StoreError, StoredResponse};

for_each_backend! {
    #[async_trait]
    impl Idempotency for Db {
        async fn reserve_idempotency_key(
            &self,
            key: &str,
            fingerprint: &str,
            now: i64,
            locked_until: i64,
            expires_at: i64,
        ) -> Result<Reservation, StoreError> {
            let mut tx = self.tx().await?;
            sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND expires_at <= $2")
                .bind(key)
                .bind(now)
                .execute(tx.conn())
                .await?;
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (key, fingerprint, locked_until, expires_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(fingerprint)
            .bind(locked_until)
            .bind(expires_at)
            .execute(tx.conn())
            .await?
            .rows_affected();
            let reservation = if inserted == 1 {
                Reservation::Reserved
            } else {
                // A reservation whose holder did not finish in time (it died) is taken over.
                let taken_over = sqlx::query(
                    "UPDATE idempotency_keys SET locked_until = $3
                     WHERE key = $1 AND fingerprint = $2 AND status IS NULL AND locked_until <= $4",
                )
                .bind(key)
                .bind(fingerprint)
                .bind(locked_until)
                .bind(now)
                .execute(tx.conn())
                .await?
                .rows_affected();
                if taken_over == 1 {
                    Reservation::Reserved
                } else {
                    let (stored, status, body): (String, Option<i16>, Option<Vec<u8>>) =
                        sqlx::query_as(
                            "SELECT fingerprint, status, body FROM idempotency_keys WHERE key = $1",
                        )
                        .bind(key)
                        .fetch_one(tx.conn())
                        .await?;
                    classify(&stored, fingerprint, status, body)?
                }
            };
            tx.commit().await?;
            Ok(reservation)
        }

        async fn complete_idempotency_key(
            &self,
            key: &str,
            response: &StoredResponse,
            now: i64,
        ) -> Result<(), StoreError> {
            let mut tx = self.tx().await?;
            sqlx::query("UPDATE idempotency_keys SET status = $2, body = $3 WHERE key = $1")
                .bind(key)
                .bind(i16::try_from(response.status).unwrap_or(i16::MAX))
                .bind(&response.body)
                .execute(tx.conn())
                .await?;
            sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
                .bind(now)
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn release_idempotency_key(&self, key: &str) -> Result<(), StoreError> {
            let mut tx = self.tx().await?;
            sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND status IS NULL")
                .bind(key)
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
            Ok(())
        }
    }
}
