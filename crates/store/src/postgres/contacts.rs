//! The contacts check cache on Postgres.

use async_trait::async_trait;

use super::PgStore;
use crate::{ContactCache, ContactCheck, StoreError};

#[async_trait]
impl ContactCache for PgStore {
    async fn contact_checks(
        &self,
        numbers: &[String],
        fresh_after: i64,
    ) -> Result<Vec<ContactCheck>, StoreError> {
        let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(
            "SELECT number, wa_id, checked_at FROM contact_checks
             WHERE number = ANY($1) AND checked_at > $2",
        )
        .bind(numbers)
        .bind(fresh_after)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(number, wa_id, checked_at)| ContactCheck { number, wa_id, checked_at })
            .collect())
    }

    async fn record_contact_checks(
        &self,
        checks: &[ContactCheck],
        forget_before: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.tx().await?;
        for check in checks {
            sqlx::query(
                "INSERT INTO contact_checks (number, wa_id, checked_at) VALUES ($1, $2, $3)
                 ON CONFLICT (number) DO UPDATE SET wa_id = excluded.wa_id,
                                                    checked_at = excluded.checked_at",
            )
            .bind(&check.number)
            .bind(&check.wa_id)
            .bind(check.checked_at)
            .execute(tx.conn())
            .await?;
        }
        sqlx::query("DELETE FROM contact_checks WHERE checked_at <= $1")
            .bind(forget_before)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
