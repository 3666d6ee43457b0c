//! The store's own state: accounts, revoked tokens, failed logins and server secrets.

use std::time::Duration;

use async_trait::async_trait;
use premise_base::UnixMs;

use crate::model::parse_role;
use crate::{Backend, Health, Store, StoreError, TokenSubject, User};

type UserRow = (String, String, String, String, bool, i64);

fn user_from_row(
    (id, username, password_hash, role, must_change_password, created_at): UserRow,
) -> Result<User, StoreError> {
    Ok(User {
        id,
        username,
        password_hash,
        role: parse_role(&role)?,
        must_change_password,
        created_at: UnixMs::from_secs(created_at),
    })
}

for_each_backend! {
    #[async_trait]
    impl Store for Db {
        fn backend(&self) -> Backend {
            Db::BACKEND
        }

        fn health(&self) -> &Health {
            &self.health
        }

        async fn migrate(&self) -> Result<(), StoreError> {
            self.run_migrations().await
        }

        async fn ready(&self) -> Result<bool, StoreError> {
            let expected = Db::MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
            let applied: Option<i64> =
                sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                    .fetch_one(self.reader())
                    .await?;
            Ok(applied.unwrap_or(0) >= expected)
        }

        async fn probe(&self) -> Result<(), StoreError> {
            self.probe_write().await
        }

        async fn secret_or_init(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
            let mut tx = self.tx().await?;
            sqlx::query(
                "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(candidate)
            .execute(tx.conn())
            .await?;
            let value = sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(tx.conn())
                .await?;
            tx.commit().await?;
            Ok(value)
        }

        async fn insert_user(&self, user: &User) -> Result<bool, StoreError> {
            let mut tx = self.tx().await?;
            let result = sqlx::query(
                "INSERT INTO users (username, id, password_hash, role, must_change_password, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (username) DO NOTHING",
            )
            .bind(&user.username)
            .bind(&user.id)
            .bind(&user.password_hash)
            .bind(user.role.as_str())
            .bind(user.must_change_password)
            .bind(user.created_at.secs())
            .execute(tx.conn())
            .await?;
            tx.commit().await?;
            Ok(result.rows_affected() == 1)
        }

        async fn user(&self, username: &str) -> Result<Option<User>, StoreError> {
            let row: Option<UserRow> = sqlx::query_as(
                "SELECT id, username, password_hash, role, must_change_password, created_at
                 FROM users WHERE username = $1",
            )
            .bind(username)
            .fetch_optional(self.reader())
            .await?;
            row.map(user_from_row).transpose()
        }

        async fn set_password(
            &self,
            username: &str,
            password_hash: &str,
            must_change_password: bool,
            new_id: &str,
        ) -> Result<bool, StoreError> {
            let mut tx = self.tx().await?;
            let result = sqlx::query(
                "UPDATE users SET password_hash = $2, must_change_password = $3, id = $4
                 WHERE username = $1",
            )
            .bind(username)
            .bind(password_hash)
            .bind(must_change_password)
            .bind(new_id)
            .execute(tx.conn())
            .await?;
            tx.commit().await?;
            Ok(result.rows_affected() == 1)
        }

        async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
            let mut tx = self.tx().await?;
            let result = sqlx::query("DELETE FROM users WHERE username = $1")
                .bind(username)
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
            Ok(result.rows_affected() == 1)
        }

        async fn token_subject(
            &self,
            username: &str,
            jti: &str,
        ) -> Result<Option<TokenSubject>, StoreError> {
            let row: Option<(String, String, bool)> = sqlx::query_as(
                "SELECT u.id, u.role, EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = $2)
                 FROM users u WHERE u.username = $1",
            )
            .bind(username)
            .bind(jti)
            .fetch_optional(self.reader())
            .await?;
            row.map(|(user_id, role, revoked)| {
                Ok(TokenSubject { user_id, role: parse_role(&role)?, revoked })
            })
            .transpose()
        }

        async fn revoke_token(
            &self,
            jti: &str,
            expires_at: UnixMs,
            now: UnixMs,
        ) -> Result<(), StoreError> {
            let mut tx = self.tx().await?;
            sqlx::query(
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
            )
            .bind(jti)
            .bind(expires_at.secs())
            .execute(tx.conn())
            .await?;
            sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < $1")
                .bind(now.secs())
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn record_login_failure(
            &self,
            client: &str,
            now: UnixMs,
            window: Duration,
        ) -> Result<u32, StoreError> {
            let mut tx = self.tx().await?;
            let failures: i32 = sqlx::query_scalar(
                "INSERT INTO login_failures (client, failures, window_started_at) VALUES ($1, 1, $2)
                 ON CONFLICT (client) DO UPDATE SET
                   failures = CASE WHEN login_failures.window_started_at <= $3 THEN 1
                                   ELSE login_failures.failures + 1 END,
                   window_started_at = CASE WHEN login_failures.window_started_at <= $3 THEN $2
                                            ELSE login_failures.window_started_at END
                 RETURNING failures",
            )
            .bind(client)
            .bind(now.secs())
            .bind(now.minus(window).secs())
            .fetch_one(tx.conn())
            .await?;
            tx.commit().await?;
            Ok(failures.unsigned_abs())
        }

        async fn login_failures(
            &self,
            client: &str,
            now: UnixMs,
            window: Duration,
        ) -> Result<u32, StoreError> {
            let failures: Option<i32> = sqlx::query_scalar(
                "SELECT failures FROM login_failures WHERE client = $1 AND window_started_at > $2",
            )
            .bind(client)
            .bind(now.minus(window).secs())
            .fetch_optional(self.reader())
            .await?;
            Ok(failures.unwrap_or(0).unsigned_abs())
        }

        async fn clear_login_failures(&self, client: &str) -> Result<(), StoreError> {
            let mut tx = self.tx().await?;
            sqlx::query("DELETE FROM login_failures WHERE client = $1")
                .bind(client)
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
            Ok(())
        }
    }
}
