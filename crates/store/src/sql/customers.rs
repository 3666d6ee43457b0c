//! Who customers are: one row per business-scoped user id, with the phone number, parent id and
//! username Meta gave last. Written only when something changes, so a status repeating what is
//! known costs a read of one row's index, not a new row version.

use async_trait::async_trait;

use crate::{CustomerMoved, Customers, KnownCustomer, StoreError};

type Row = (String, Option<String>, Option<String>, Option<String>);

fn known((user_id, wa_id, parent_user_id, username): Row) -> KnownCustomer {
    KnownCustomer { user_id, wa_id, parent_user_id, username }
}

const COLUMNS: &str = "user_id, wa_id, parent_user_id, username";

for_each_backend! {
    async fn keep(
        conn: &mut <Database as sqlx::Database>::Connection,
        customer: &KnownCustomer,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO customers (user_id, wa_id, parent_user_id, username, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id) DO UPDATE SET
               wa_id = COALESCE(excluded.wa_id, customers.wa_id),
               parent_user_id = COALESCE(excluded.parent_user_id, customers.parent_user_id),
               username = COALESCE(excluded.username, customers.username),
               updated_at = excluded.updated_at
             WHERE customers.wa_id IS DISTINCT FROM COALESCE(excluded.wa_id, customers.wa_id)
                OR customers.parent_user_id IS DISTINCT FROM
                   COALESCE(excluded.parent_user_id, customers.parent_user_id)
                OR customers.username IS DISTINCT FROM
                   COALESCE(excluded.username, customers.username)",
        )
        .bind(&customer.user_id)
        .bind(&customer.wa_id)
        .bind(&customer.parent_user_id)
        .bind(&customer.username)
        .bind(at_ms)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The customer holding phone number `wa_id` under another user id than `user_id`, whose
    /// number is taken from them.
    async fn take_number(
        conn: &mut <Database as sqlx::Database>::Connection,
        wa_id: &str,
        user_id: &str,
        at_ms: i64,
    ) -> Result<Option<KnownCustomer>, StoreError> {
        let previous: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM customers WHERE wa_id = $1 AND user_id <> $2 LIMIT 1"
        ))
        .bind(wa_id)
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?;
        if previous.is_some() {
            sqlx::query(
                "UPDATE customers SET wa_id = NULL, updated_at = $3
                 WHERE wa_id = $1 AND user_id <> $2",
            )
            .bind(wa_id)
            .bind(user_id)
            .bind(at_ms)
            .execute(&mut *conn)
            .await?;
        }
        Ok(previous.map(known))
    }

    #[async_trait]
    impl Customers for Db {
        async fn learn_customers(
            &self,
            customers: &[KnownCustomer],
            at_ms: i64,
        ) -> Result<Vec<CustomerMoved>, StoreError> {
            if customers.is_empty() {
                return Ok(Vec::new());
            }
            let mut tx = self.tx().await?;
            let mut moved = Vec::new();
            for customer in customers {
                if let Some(wa_id) = &customer.wa_id
                    && let Some(previous) =
                        take_number(tx.conn(), wa_id, &customer.user_id, at_ms).await?
                {
                    moved.push(CustomerMoved { previous, current: customer.clone() });
                }
                keep(tx.conn(), customer, at_ms).await?;
            }
            tx.commit().await?;
            Ok(moved)
        }

        async fn customer_renamed(
            &self,
            previous: &str,
            current: &KnownCustomer,
            at_ms: i64,
        ) -> Result<Option<KnownCustomer>, StoreError> {
            let mut tx = self.tx().await?;
            let before: Option<Row> =
                sqlx::query_as(&format!("SELECT {COLUMNS} FROM customers WHERE user_id = $1"))
                    .bind(previous)
                    .fetch_optional(tx.conn())
                    .await?;
            let before = before.map(known);
            let mut merged = current.clone();
            if let Some(before) = &before {
                merged.parent_user_id = merged.parent_user_id.or(before.parent_user_id.clone());
                merged.username = merged.username.or(before.username.clone());
                sqlx::query("DELETE FROM customers WHERE user_id = $1")
                    .bind(previous)
                    .execute(tx.conn())
                    .await?;
            }
            if let Some(wa_id) = &merged.wa_id {
                take_number(tx.conn(), wa_id, &merged.user_id, at_ms).await?;
            }
            keep(tx.conn(), &merged, at_ms).await?;
            tx.commit().await?;
            Ok(before)
        }

        async fn customer(&self, key: &str) -> Result<Option<KnownCustomer>, StoreError> {
            let row: Option<Row> = sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM customers WHERE user_id = $1 OR wa_id = $1
                 ORDER BY updated_at DESC LIMIT 1"
            ))
            .bind(key)
            .fetch_optional(self.reader())
            .await?;
            Ok(row.map(known))
        }
    }
}
