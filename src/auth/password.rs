//! Argon2id password hashes, computed off the async runtime: a hash takes tens of milliseconds
//! of CPU and must not stall the tasks serving other requests.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};

#[derive(Debug, Clone, Default)]
pub struct PasswordHasher {
    /// A hash of nothing anyone knows, checked against when the account does not exist, so that
    /// "no such user" takes as long as "wrong password".
    decoy: Arc<OnceLock<String>>,
}

impl PasswordHasher {
    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
    }

    /// Whether `password` matches `stored`; with `stored = None` checks against the decoy and
    /// answers `false`.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> anyhow::Result<bool> {
        let password = password.to_owned();
        let (stored, real) = match stored {
            Some(s) => (s.to_owned(), true),
            None => (self.decoy()?, false),
        };
        let matches = tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&stored)
                .map_err(|e| anyhow::anyhow!("stored password hash is not a PHC string: {e}"))?;
            anyhow::Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await??;
        Ok(matches && real)
    }

    fn decoy(&self) -> anyhow::Result<String> {
        if let Some(d) = self.decoy.get() {
            return Ok(d.clone());
        }
        let decoy = hash_blocking(&uuid::Uuid::new_v4().to_string())?;
        Ok(self.decoy.get_or_init(|| decoy).clone())
    }
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::PasswordHasher;

    #[tokio::test]
    async fn hashes_verify_and_differ() {
        let hasher = PasswordHasher::default();
        let a = hasher.hash("Secret123!").await.unwrap();
        let b = hasher.hash("Secret123!").await.unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "salted");
        assert!(hasher.verify("Secret123!", Some(&a)).await.unwrap());
        assert!(!hasher.verify("Secret123?", Some(&a)).await.unwrap());
        assert!(!hasher.verify("Secret123!", None).await.unwrap());
    }
}
