//! The sandbox's shared state (templates, clock, customer windows) on SQLite.

use async_trait::async_trait;

use super::SqliteStore;
use crate::{SandboxState, StoreError};

#[async_trait]
impl SandboxState for SqliteStore {
    async fn sandbox_templates(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT definition FROM sandbox_templates ORDER BY name, language")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(d,)| d).collect())
    }

    async fn put_sandbox_template(
        &self,
        name: &str,
        language: &str,
        definition: &str,
        replace: bool,
    ) -> Result<bool, StoreError> {
        let on_conflict =
            if replace { "DO UPDATE SET definition = excluded.definition" } else { "DO NOTHING" };
        let mut tx = self.tx().await?;
        let done = sqlx::query(&format!(
            "INSERT INTO sandbox_templates (name, language, definition) VALUES (?1, ?2, ?3)
             ON CONFLICT (name, language) {on_conflict}"
        ))
        .bind(name)
        .bind(language)
        .bind(definition)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_sandbox_template(
        &self,
        name: &str,
        language: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tx().await?;
        let done = sqlx::query("DELETE FROM sandbox_templates WHERE name = ?1 AND language = ?2")
            .bind(name)
            .bind(language)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn sandbox_clock_offset(&self) -> Result<i64, StoreError> {
        let (offset,): (i64,) = sqlx::query_as("SELECT offset_ms FROM sandbox_clock WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(offset)
    }

    async fn move_sandbox_clock(&self, delta_ms: i64, set: bool) -> Result<i64, StoreError> {
        let sql = if set {
            "UPDATE sandbox_clock SET offset_ms = ?1 WHERE id = 1 RETURNING offset_ms"
        } else {
            "UPDATE sandbox_clock SET offset_ms = offset_ms + ?1 WHERE id = 1 RETURNING offset_ms"
        };
        let mut tx = self.tx().await?;
        let (offset,): (i64,) = sqlx::query_as(sql).bind(delta_ms).fetch_one(tx.conn()).await?;
        tx.commit().await?;
        Ok(offset)
    }

    async fn customer_wrote(&self, wa_id: &str, at_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.tx().await?;
        sqlx::query(
            "INSERT INTO sandbox_windows (wa_id, last_inbound_ms) VALUES (?1, ?2)
             ON CONFLICT (wa_id) DO UPDATE
             SET last_inbound_ms = max(sandbox_windows.last_inbound_ms, excluded.last_inbound_ms)",
        )
        .bind(wa_id)
        .bind(at_ms)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn customer_windows(&self, since_ms: i64) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT wa_id, last_inbound_ms FROM sandbox_windows WHERE last_inbound_ms >= ?1",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?)
    }
}
