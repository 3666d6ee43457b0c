//! Accounts: the default admin of a fresh install, creating users, changing passwords and
//! checking credentials. Shared by the HTTP API and the `premise users` commands.

use std::sync::Arc;

use premise_store::{Store, User};
use premise_wire::{Password, Role, Username};

use super::password::PasswordError;
use premise_base::Clock;

use super::PasswordHasher;

/// The account every install starts with; it cannot be deleted.
pub const DEFAULT_ADMIN: &str = "admin";
/// Its first password, which must be changed at first login (On-Premises behaviour).
const DEFAULT_ADMIN_PASSWORD: &str = "secret";

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("an account with that username already exists")]
    Exists,
    #[error("no such account")]
    NotFound,
    /// Too many password checks are waiting; nothing was checked or changed.
    #[error("too many password checks at once")]
    Busy,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<PasswordError> for AccountError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Busy => Self::Busy,
            PasswordError::Failed(cause) => Self::Internal(cause),
        }
    }
}

impl From<premise_store::StoreError> for AccountError {
    fn from(e: premise_store::StoreError) -> Self {
        Self::Internal(e.into())
    }
}

#[derive(Debug, Clone)]
pub struct Accounts {
    store: Arc<dyn Store>,
    hasher: PasswordHasher,
    clock: Clock,
}

impl Accounts {
    pub fn new(store: Arc<dyn Store>, hasher: PasswordHasher, clock: Clock) -> Self {
        Self { store, hasher, clock }
    }

    /// Creates `admin`/`secret`, flagged for a password change, unless `admin` exists. Safe to
    /// run from several replicas at once.
    pub async fn ensure_default_admin(&self) -> Result<(), AccountError> {
        if self.store.user(DEFAULT_ADMIN).await?.is_some() {
            return Ok(());
        }
        let user = self.new_user(DEFAULT_ADMIN, DEFAULT_ADMIN_PASSWORD, Role::Admin, true).await?;
        if self.store.insert_user(&user).await? {
            tracing::info!(
                "created the default account admin; its password must be changed at first login"
            );
        }
        Ok(())
    }

    pub async fn create(
        &self,
        username: &Username,
        password: &Password,
        role: Role,
    ) -> Result<(), AccountError> {
        let user = self.new_user(username.as_str(), password.expose(), role, false).await?;
        if self.store.insert_user(&user).await? { Ok(()) } else { Err(AccountError::Exists) }
    }

    /// Sets a new password and clears a pending first-login change.
    /// Sets the password; every token issued before stops holding (the account gets a new
    /// id, which tokens name). The account's new id, for a token issued after the change.
    pub async fn set_password(
        &self,
        username: &str,
        password: &Password,
    ) -> Result<String, AccountError> {
        let hash = self.hasher.hash(password.expose()).await?;
        let new_id = uuid::Uuid::new_v4().simple().to_string();
        if self.store.set_password(username, &hash, false, &new_id).await? {
            Ok(new_id)
        } else {
            Err(AccountError::NotFound)
        }
    }

    /// The account, if `password` is its password. Takes as long for unknown usernames.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, AccountError> {
        let user = self.store.user(username).await?;
        let ok =
            self.hasher.verify(password, user.as_ref().map(|u| u.password_hash.as_str())).await?;
        Ok(user.filter(|_| ok))
    }

    async fn new_user(
        &self,
        username: &str,
        password: &str,
        role: Role,
        must_change: bool,
    ) -> Result<User, AccountError> {
        Ok(User {
            id: uuid::Uuid::new_v4().simple().to_string(),
            username: username.to_owned(),
            password_hash: self.hasher.hash(password).await?,
            role,
            must_change_password: must_change,
            created_at: self.clock.now(),
        })
    }
}
