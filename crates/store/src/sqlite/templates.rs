//! The sandbox's template registry on SQLite.

use async_trait::async_trait;

use super::SqliteStore;
use crate::{StoreError, Templates};

#[async_trait]
impl Templates for SqliteStore {
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
        let done = sqlx::query(&format!(
            "INSERT INTO sandbox_templates (name, language, definition) VALUES (?1, ?2, ?3)
             ON CONFLICT (name, language) {on_conflict}"
        ))
        .bind(name)
        .bind(language)
        .bind(definition)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_sandbox_template(
        &self,
        name: &str,
        language: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sandbox_templates WHERE name = ?1 AND language = ?2")
            .bind(name)
            .bind(language)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
