//! The account's profile settings, a JSON document per name.

use async_trait::async_trait;

use crate::store::Documents;
use crate::{Document, StoreError};

for_each_backend! {
    #[async_trait]
    impl Documents for Db {
        async fn document(&self, name: &str) -> Result<Option<String>, StoreError> {
            Ok(sqlx::query_scalar("SELECT document FROM account_documents WHERE name = $1")
                .bind(name)
                .fetch_optional(self.reader())
                .await?)
        }

        async fn replace_document(
            &self,
            name: &str,
            expected: Option<&str>,
            document: &str,
        ) -> Result<bool, StoreError> {
            let mut tx = self.tx().await?;
            let statement = match expected {
                Some(_) => {
                    "UPDATE account_documents SET document = $3 WHERE name = $1 AND document = $2"
                }
                None => {
                    "INSERT INTO account_documents (name, document) VALUES ($1, $3)
                     ON CONFLICT (name) DO NOTHING"
                }
            };
            let replaced = sqlx::query(statement)
                .bind(name)
                .bind(expected.unwrap_or_default())
                .bind(document)
                .execute(tx.conn())
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(replaced == 1)
        }

        async fn delete_document(&self, name: &str) -> Result<bool, StoreError> {
            let mut tx = self.tx().await?;
            let deleted = sqlx::query("DELETE FROM account_documents WHERE name = $1")
                .bind(name)
                .execute(tx.conn())
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(deleted == 1)
        }

        async fn all_documents(&self) -> Result<Vec<Document>, StoreError> {
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT name, document FROM account_documents ORDER BY name")
                    .fetch_all(self.reader())
                    .await?;
            Ok(rows.into_iter().map(|(name, body)| Document { name, body }).collect())
        }
    }
}
