//! The contacts check cache on SQLite.

use async_trait::async_trait;

use super::SqliteStore;
use crate::{ContactCache, ContactCheck, StoreError};

#[async_trait]
impl ContactCache for SqliteStore {
    async fn contact_checks(
        &self,
        numbers: &[String],
        fresh_after: i64,
    ) -> Result<Vec<ContactCheck>, StoreError> {
        let mut found = Vec::new();
        let mut conn = self.pool.acquire().await?;
        for number in numbers {
            let row: Option<(Option<String>, i64)> = sqlx::query_as(
                "SELECT wa_id, checked_at FROM contact_checks WHERE number = ?1 AND checked_at > ?2",
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

    async fn record_contact_checks(
        &self,
        checks: &[ContactCheck],
        forget_before: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.tx().await?;
        for check in checks {
            sqlx::query(
                "INSERT INTO contact_checks (number, wa_id, checked_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (number) DO UPDATE SET wa_id = excluded.wa_id,
                                                    checked_at = excluded.checked_at",
            )
            .bind(&check.number)
            .bind(&check.wa_id)
            .bind(check.checked_at)
            .execute(tx.conn())
            .await?;
        }
        sqlx::query("DELETE FROM contact_checks WHERE checked_at <= ?1")
            .bind(forget_before)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
