//! Looking into the test's database directly, for what the API does not show (how many rows a
//! table holds) and for arranging state the API cannot (an old cache entry).

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;

use super::TestDb;

impl TestDb {
    /// Runs one statement.
    pub async fn execute(&self, sql: &str) {
        if self.url.starts_with("sqlite:") {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(&self.url)
                .unwrap()
                .busy_timeout(Duration::from_secs(10));
            let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    }

    /// The single integer `sql` selects (write `COUNT(*)` and the like).
    pub async fn scalar(&self, sql: &str) -> i64 {
        if self.url.starts_with("sqlite:") {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(&self.url)
                .unwrap()
                .busy_timeout(Duration::from_secs(10));
            let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        }
    }

    /// The text column `sql` selects, every row.
    pub async fn strings(&self, sql: &str) -> Vec<String> {
        if self.url.starts_with("sqlite:") {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(&self.url)
                .unwrap()
                .busy_timeout(Duration::from_secs(10));
            let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
            sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
        }
    }

    /// The shards whose lease is alive, on the database's clock (leases are timed on it), with
    /// their owners, by shard. Postgres only.
    pub async fn live_leases(&self) -> Vec<(i32, String)> {
        let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
        sqlx::query_as(
            "SELECT shard, owner FROM shard_leases
             WHERE expires_at > (extract(epoch FROM clock_timestamp()) * 1000)::bigint
             ORDER BY shard",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
    }
}
