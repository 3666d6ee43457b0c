//! How many rows each table holds, for `GET /v1/stats/db/internal`.

use async_trait::async_trait;

use crate::store::Inventory;
use crate::{StoreError, TableRows};

/// Every table of the schema, in migration order.
pub const TABLES: [&str; 25] = [
    "users",
    "revoked_tokens",
    "login_failures",
    "server_secrets",
    "account",
    "app_settings",
    "messages",
    "callbacks",
    "shard_leases",
    "nodes",
    "inbound_messages",
    "media",
    "media_chunks",
    "contact_checks",
    "idempotency_keys",
    "sandbox_templates",
    "sandbox_clock",
    "sandbox_windows",
    "cloud_media",
    "job_leases",
    "sandbox_conversations",
    "account_documents",
    "cloud_webhooks",
    "customers",
    "callback_attempts",
];

for_each_backend! {
    #[async_trait]
    impl Inventory for Db {
        async fn row_counts(&self) -> Result<Vec<TableRows>, StoreError> {
            let mut counts = Vec::with_capacity(TABLES.len());
            for table in TABLES {
                let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                    .fetch_one(self.reader())
                    .await?;
                counts.push(TableRows { table, rows });
            }
            Ok(counts)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TABLES;

    /// A migration that adds a table must add it here too.
    #[test]
    fn every_table_of_the_migrations_is_counted() {
        for backend in ["postgres", "sqlite"] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../migrations")
                .join(backend);
            let mut created = Vec::new();
            for entry in std::fs::read_dir(&dir).unwrap() {
                let sql = std::fs::read_to_string(entry.unwrap().path()).unwrap();
                let words: Vec<&str> = sql.split_whitespace().collect();
                for pair in words.windows(3) {
                    if pair[0].eq_ignore_ascii_case("CREATE")
                        && pair[1].eq_ignore_ascii_case("TABLE")
                    {
                        created.push(pair[2].trim_end_matches('(').to_owned());
                    }
                }
            }
            created.retain(|t| !t.eq_ignore_ascii_case("IF"));
            created.sort();
            created.dedup();
            let mut counted: Vec<String> = TABLES.iter().map(|t| (*t).to_owned()).collect();
            counted.sort();
            assert_eq!(created, counted, "{backend}");
        }
    }
}
