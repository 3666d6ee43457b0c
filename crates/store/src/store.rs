//! The storage interface every backend implements.

use async_trait::async_trait;

use crate::{Backend, StoreError, TokenSubject, User};

/// All persistent state of Premise. Times are Unix seconds, passed in by the caller so that
/// the rules that depend on them can be tested with any clock.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    fn backend(&self) -> Backend;

    /// Applies this backend's pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Whether the database answers and every migration this build knows has been applied.
    async fn ready(&self) -> Result<bool, StoreError>;

    /// The secret called `name`. The first caller's `candidate` wins; every later caller, on
    /// any replica, gets that same value back.
    async fn secret_or_init(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError>;

    /// Creates the account; `false` if the username is taken (the existing account is kept).
    async fn insert_user(&self, user: &User) -> Result<bool, StoreError>;
    async fn user(&self, username: &str) -> Result<Option<User>, StoreError>;
    /// Replaces the password hash and the must-change flag; `false` if there is no such user.
    async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        must_change_password: bool,
    ) -> Result<bool, StoreError>;
    /// `false` if there is no such user.
    async fn delete_user(&self, username: &str) -> Result<bool, StoreError>;

    /// Resolves a token's `sub` and `jti` in one round trip; `None` if the account is gone.
    async fn token_subject(
        &self,
        username: &str,
        jti: &str,
    ) -> Result<Option<TokenSubject>, StoreError>;
    /// Revokes a token until `expires_at`, and forgets revocations whose tokens expired by `now`.
    async fn revoke_token(&self, jti: &str, expires_at: i64, now: i64) -> Result<(), StoreError>;

    /// Counts a failed login by `client` in a fixed window of `window_secs` and returns the
    /// count in the current window.
    async fn record_login_failure(
        &self,
        client: &str,
        now: i64,
        window_secs: i64,
    ) -> Result<u32, StoreError>;
    /// Failed logins by `client` in its current window (0 once the window has passed).
    async fn login_failures(
        &self,
        client: &str,
        now: i64,
        window_secs: i64,
    ) -> Result<u32, StoreError>;
    async fn clear_login_failures(&self, client: &str) -> Result<(), StoreError>;
}
