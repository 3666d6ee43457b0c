//! The `/v1/contacts` cache.

use async_trait::async_trait;
use premise_base::UnixMs;

use crate::store::ContactCache;
use crate::{ContactCheck, StoreError};

for_each_backend! {
    #[async_trait]
    impl ContactCache for Db {
        async fn contact_checks(
            &self,
            numbers: &[String],
            fresh_after: UnixMs,
        ) -> Result<Vec<ContactCheck>, StoreError> {
            let rows = self.contact_rows(numbers, fresh_after.secs()).await?;
            Ok(rows
                .into_iter()
                .map(|(number, wa_id, checked_at)| ContactCheck {
                    number,
                    wa_id,
                    checked_at: UnixMs::from_secs(checked_at),
                })
                .collect())
        }

        async fn record_contact_checks(
            &self,
            checks: &[ContactCheck],
            forget_before: UnixMs,
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
                .bind(check.checked_at.secs())
                .execute(tx.conn())
                .await?;
            }
            sqlx::query("DELETE FROM contact_checks WHERE checked_at <= $1")
                .bind(forget_before.secs())
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
            Ok(())
        }
    }
}
