//! Idempotency keys on SQLite. Reservation is one write transaction on the single writer, so
//! two requests with one key cannot both reserve it.

use async_trait::async_trait;

use super::SqliteStore;
use crate::{Idempotency, Reservation, StoreError, StoredResponse};

#[async_trait]
impl Idempotency for SqliteStore {
    async fn reserve_idempotency_key(
        &self,
        key: &str,
        fingerprint: &str,
        now: i64,
        locked_until: i64,
        expires_at: i64,
    ) -> Result<Reservation, StoreError> {
        let mut tx = self.tx().await?;
        sqlx::query("DELETE FROM idempotency_keys WHERE key = ?1 AND expires_at <= ?2")
            .bind(key)
            .bind(now)
            .execute(tx.conn())
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (key, fingerprint, locked_until, expires_at)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key) DO NOTHING",
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
            let taken_over = sqlx::query(
                "UPDATE idempotency_keys SET locked_until = ?3
                 WHERE key = ?1 AND fingerprint = ?2 AND status IS NULL AND locked_until <= ?4",
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
                let (stored, status, body): (String, Option<i64>, Option<Vec<u8>>) =
                    sqlx::query_as(
                        "SELECT fingerprint, status, body FROM idempotency_keys WHERE key = ?1",
                    )
                    .bind(key)
                    .fetch_one(tx.conn())
                    .await?;
                crate::model::classify(&stored, fingerprint, status, body)?
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
        sqlx::query("UPDATE idempotency_keys SET status = ?2, body = ?3 WHERE key = ?1")
            .bind(key)
            .bind(i64::from(response.status))
            .bind(&response.body)
            .execute(tx.conn())
            .await?;
        sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= ?1")
            .bind(now)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn release_idempotency_key(&self, key: &str) -> Result<(), StoreError> {
        let mut tx = self.tx().await?;
        sqlx::query("DELETE FROM idempotency_keys WHERE key = ?1 AND status IS NULL")
            .bind(key)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
