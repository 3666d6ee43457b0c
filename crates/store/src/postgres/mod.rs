//! The Postgres backend: production, and any number of replicas on one database.

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

use crate::model::parse_role;
use crate::{Backend, ConnectOptions, Store, StoreError, TokenSubject, User};

mod contacts;
mod idempotency;
mod inbox;
mod media;
mod pipeline;
mod sandbox;

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/postgres");

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn open(url: &str, options: &ConnectOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect(url)
            .await?;
        Ok(Self { pool })
    }
}

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
        created_at,
    })
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ready(&self) -> Result<bool, StoreError> {
        let expected = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        Ok(applied.unwrap_or(0) >= expected)
    }

    async fn secret_or_init(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        sqlx::query("INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(candidate)
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn insert_user(&self, user: &User) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO users (username, id, password_hash, role, must_change_password, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (username) DO NOTHING",
        )
        .bind(&user.username)
        .bind(&user.id)
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(user.must_change_password)
        .bind(user.created_at)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn user(&self, username: &str) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT id, username, password_hash, role, must_change_password, created_at
             FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.map(user_from_row).transpose()
    }

    async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        must_change_password: bool,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE users SET password_hash = $2, must_change_password = $3 WHERE username = $1",
        )
        .bind(username)
        .bind(password_hash)
        .bind(must_change_password)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM users WHERE username = $1")
            .bind(username)
            .execute(&self.pool)
            .await?;
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
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(user_id, role, revoked)| {
            Ok(TokenSubject { user_id, role: parse_role(&role)?, revoked })
        })
        .transpose()
    }

    async fn revoke_token(&self, jti: &str, expires_at: i64, now: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
            .bind(jti)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_login_failure(
        &self,
        client: &str,
        now: i64,
        window_secs: i64,
    ) -> Result<u32, StoreError> {
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
        .bind(now)
        .bind(now - window_secs)
        .fetch_one(&self.pool)
        .await?;
        Ok(failures.unsigned_abs())
    }

    async fn login_failures(
        &self,
        client: &str,
        now: i64,
        window_secs: i64,
    ) -> Result<u32, StoreError> {
        let failures: Option<i32> = sqlx::query_scalar(
            "SELECT failures FROM login_failures WHERE client = $1 AND window_started_at > $2",
        )
        .bind(client)
        .bind(now - window_secs)
        .fetch_optional(&self.pool)
        .await?;
        Ok(failures.unwrap_or(0).unsigned_abs())
    }

    async fn clear_login_failures(&self, client: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE client = $1")
            .bind(client)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
