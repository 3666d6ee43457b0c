//! Who customers are: one row per business-scoped user id, with the phone number, parent id,
//! username and profile name Meta gave last. Written only when something changes, so a status repeating what is
//! known costs a read of one row's index, not a new row version.

use async_trait::async_trait;
use premise_base::UnixMs;

use crate::{CustomerMoved, Customers, KnownCustomer, StoreError};

type Row = (String, Option<String>, Option<String>, Option<String>, Option<String>);

fn known((user_id, wa_id, parent_user_id, username, profile_name): Row) -> KnownCustomer {
    KnownCustomer { user_id, wa_id, parent_user_id, username, profile_name }
}

const COLUMNS: &str = "user_id, wa_id, parent_user_id, username, profile_name";

/// Customers written per statement (six parameters each).
const CHUNK: usize = 64;

/// What is given replaces what is kept, what is not given stays; a row whose values would not
/// change is not written.
const UPSERT: &str = " ON CONFLICT (user_id) DO UPDATE SET
      wa_id = COALESCE(excluded.wa_id, customers.wa_id),
      parent_user_id = COALESCE(excluded.parent_user_id, customers.parent_user_id),
      username = COALESCE(excluded.username, customers.username),
      profile_name = COALESCE(excluded.profile_name, customers.profile_name),
      updated_at = excluded.updated_at
    WHERE customers.wa_id IS DISTINCT FROM COALESCE(excluded.wa_id, customers.wa_id)
       OR customers.parent_user_id IS DISTINCT FROM
          COALESCE(excluded.parent_user_id, customers.parent_user_id)
       OR customers.username IS DISTINCT FROM COALESCE(excluded.username, customers.username)
       OR customers.profile_name IS DISTINCT FROM
          COALESCE(excluded.profile_name, customers.profile_name)";

for_each_backend! {
    async fn keep(
        conn: &mut <Database as sqlx::Database>::Connection,
        customer: &KnownCustomer,
        at: UnixMs,
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO customers
                 (user_id, wa_id, parent_user_id, username, profile_name, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6) {UPSERT}"
        ))
        .bind(&customer.user_id)
        .bind(&customer.wa_id)
        .bind(&customer.parent_user_id)
        .bind(&customer.username)
        .bind(&customer.profile_name)
        .bind(at.ms())
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
        at: UnixMs,
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
            .bind(at.ms())
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
            at: UnixMs,
        ) -> Result<Vec<CustomerMoved>, StoreError> {
            // One entry per user id: an upsert may not touch a row twice.
            let customers = KnownCustomer::merged(customers.iter().cloned());
            if customers.is_empty() {
                return Ok(Vec::new());
            }
            let mut tx = self.tx().await?;
            let mut moved = Vec::new();
            // A webhook's customers in a few statements, not two per customer: who holds their
            // numbers now, the numbers taken from others (rare), then one upsert.
            for chunk in customers.chunks(CHUNK) {
                let numbers: Vec<String> = chunk.iter().filter_map(|c| c.wa_id.clone()).collect();
                if !numbers.is_empty() {
                    let mut holders = sqlx::QueryBuilder::<Database>::new(format!(
                        "SELECT {COLUMNS} FROM customers WHERE wa_id IN ("
                    ));
                    let mut list = holders.separated(", ");
                    for number in numbers {
                        list.push_bind(number);
                    }
                    holders.push(")");
                    let holders: Vec<Row> =
                        holders.build_query_as().fetch_all(tx.conn()).await?;
                    let mut taken_from = Vec::new();
                    for holder in holders.into_iter().map(known) {
                        let Some(current) = chunk
                            .iter()
                            .find(|c| c.wa_id == holder.wa_id && c.user_id != holder.user_id)
                        else {
                            continue;
                        };
                        taken_from.push(holder.user_id.clone());
                        moved.push(CustomerMoved { previous: holder, current: current.clone() });
                    }
                    if !taken_from.is_empty() {
                        let mut take = sqlx::QueryBuilder::<Database>::new(
                            "UPDATE customers SET wa_id = NULL, updated_at = ",
                        );
                        take.push_bind(at.ms()).push(" WHERE user_id IN (");
                        let mut list = take.separated(", ");
                        for user_id in taken_from {
                            list.push_bind(user_id);
                        }
                        take.push(")");
                        take.build().execute(tx.conn()).await?;
                    }
                }
                let mut keep = sqlx::QueryBuilder::<Database>::new(
                    "INSERT INTO customers
                         (user_id, wa_id, parent_user_id, username, profile_name, updated_at) ",
                );
                keep.push_values(chunk, |mut row, c| {
                    row.push_bind(c.user_id.clone())
                        .push_bind(c.wa_id.clone())
                        .push_bind(c.parent_user_id.clone())
                        .push_bind(c.username.clone())
                        .push_bind(c.profile_name.clone())
                        .push_bind(at.ms());
                });
                keep.push(UPSERT);
                keep.build().execute(tx.conn()).await?;
            }
            tx.commit().await?;
            Ok(moved)
        }

        async fn customer_renamed(
            &self,
            previous: &str,
            current: &KnownCustomer,
            at: UnixMs,
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
                merged.profile_name = merged.profile_name.or(before.profile_name.clone());
                sqlx::query("DELETE FROM customers WHERE user_id = $1")
                    .bind(previous)
                    .execute(tx.conn())
                    .await?;
            }
            if let Some(wa_id) = &merged.wa_id {
                take_number(tx.conn(), wa_id, &merged.user_id, at).await?;
            }
            keep(tx.conn(), &merged, at).await?;
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
