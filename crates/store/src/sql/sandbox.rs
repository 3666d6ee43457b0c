//! The sandbox's shared state: its template registry, its clock, when each customer last
//! wrote and the open conversations, so every replica emulates the same network.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

use crate::store::SandboxState;
use premise_base::UnixMs;

use crate::{ConversationOpening, CustomerWindow, SandboxConversation, StoreError};

for_each_backend! {
    #[async_trait]
    impl SandboxState for Db {
        async fn sandbox_templates(&self) -> Result<Vec<String>, StoreError> {
            Ok(sqlx::query_scalar("SELECT definition FROM sandbox_templates ORDER BY name, language")
                .fetch_all(self.reader())
                .await?)
        }

        async fn put_sandbox_template(
            &self,
            name: &str,
            language: &str,
            definition: &str,
            replace: bool,
        ) -> Result<bool, StoreError> {
            let statement = if replace {
                "INSERT INTO sandbox_templates (name, language, definition) VALUES ($1, $2, $3)
                 ON CONFLICT (name, language) DO UPDATE SET definition = excluded.definition"
            } else {
                "INSERT INTO sandbox_templates (name, language, definition) VALUES ($1, $2, $3)
                 ON CONFLICT (name, language) DO NOTHING"
            };
            let mut tx = self.tx().await?;
            let done = sqlx::query(statement)
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
            let done = sqlx::query("DELETE FROM sandbox_templates WHERE name = $1 AND language = $2")
                .bind(name)
                .bind(language)
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        }

        async fn sandbox_clock_offset(&self) -> Result<i64, StoreError> {
            Ok(sqlx::query_scalar("SELECT offset_ms FROM sandbox_clock WHERE id = 1")
                .fetch_one(self.reader())
                .await?)
        }

        async fn move_sandbox_clock(&self, delta_ms: i64, set: bool) -> Result<i64, StoreError> {
            let statement = if set {
                "UPDATE sandbox_clock SET offset_ms = $1 WHERE id = 1 RETURNING offset_ms"
            } else {
                "UPDATE sandbox_clock SET offset_ms = offset_ms + $1 WHERE id = 1 RETURNING offset_ms"
            };
            let mut tx = self.tx().await?;
            let offset: i64 =
                sqlx::query_scalar(statement).bind(delta_ms).fetch_one(tx.conn()).await?;
            tx.commit().await?;
            Ok(offset)
        }

        async fn customer_wrote(&self, wa_id: &str, at: UnixMs) -> Result<(), StoreError> {
            let mut tx = self.tx().await?;
            sqlx::query(
                "INSERT INTO sandbox_windows (wa_id, last_inbound_ms) VALUES ($1, $2)
                 ON CONFLICT (wa_id) DO UPDATE SET last_inbound_ms =
                   CASE WHEN excluded.last_inbound_ms > sandbox_windows.last_inbound_ms
                        THEN excluded.last_inbound_ms ELSE sandbox_windows.last_inbound_ms END",
            )
            .bind(wa_id)
            .bind(at.ms())
            .execute(tx.conn())
            .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn customer_windows(&self, since: UnixMs) -> Result<Vec<CustomerWindow>, StoreError> {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT wa_id, last_inbound_ms FROM sandbox_windows WHERE last_inbound_ms >= $1",
            )
            .bind(since.ms())
            .fetch_all(self.reader())
            .await?;
            Ok(rows
                .into_iter()
                .map(|(wa_id, wrote_at)| CustomerWindow { wa_id, wrote_at: UnixMs(wrote_at) })
                .collect())
        }

        async fn open_conversations(
            &self,
            openings: &[ConversationOpening],
            now: UnixMs,
        ) -> Result<HashMap<String, SandboxConversation>, StoreError> {
            // A customer named twice would be upserted twice in one statement: its first.
            let mut seen = HashSet::new();
            let distinct: Vec<&ConversationOpening> =
                openings.iter().filter(|o| seen.insert(o.wa_id.as_str())).collect();
            let rows = self.upsert_conversations(&distinct, now.ms()).await?;
            Ok(rows
                .into_iter()
                .map(|(wa_id, id, user_initiated, expires)| {
                    (wa_id, SandboxConversation { id, user_initiated, expires: UnixMs(expires) })
                })
                .collect())
        }
    }
}

/// What an upsert of a conversation does on conflict (`$5` is now, Unix ms): the stored
/// conversation stays while it is open, an expired one is replaced by the candidate.
pub(crate) const KEEP_OPEN_CONVERSATION: &str = "ON CONFLICT (wa_id) DO UPDATE SET
     id = CASE WHEN sandbox_conversations.expires_ms <= $5
          THEN excluded.id ELSE sandbox_conversations.id END,
     user_initiated = CASE WHEN sandbox_conversations.expires_ms <= $5
          THEN excluded.user_initiated ELSE sandbox_conversations.user_initiated END,
     expires_ms = CASE WHEN sandbox_conversations.expires_ms <= $5
          THEN excluded.expires_ms ELSE sandbox_conversations.expires_ms END
 RETURNING wa_id, id, user_initiated, expires_ms";
