//! Argon2id password hashes (OWASP's parameters: 19 MiB, 2 passes, 1 lane), computed off the
//! async runtime and bounded.
//!
//! A hash takes tens of milliseconds of CPU and 19 MiB of memory. Unbounded, a burst of logins
//! took gigabytes (every blocking thread held its own 19 MiB, and the allocator kept it after).
//! So at most `limit` hashes run at once (one per core by default), each on one of `limit`
//! memory buffers that are allocated once and reused; a check waits at most `wait` for its
//! turn, then is refused ([`PasswordError::Busy`], answered 503), so a burst costs time, not
//! memory.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

/// Stored hashes asking for more memory than this are refused as corrupt.
const MAX_MEMORY_KIB: u32 = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too many password checks are waiting; nothing was checked.
    #[error("too many password checks at once")]
    Busy,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

#[derive(Debug, Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// One permit per hash that may run at once.
    permits: Arc<Semaphore>,
    /// The hashes' memory, reused: never more buffers than permits.
    memory: Mutex<Vec<Vec<Block>>>,
    /// How long a check waits for a permit before it is refused.
    wait: Duration,
    /// A hash of nothing anyone knows, checked against when the account does not exist, so that
    /// "no such user" takes as long as "wrong password".
    decoy: OnceLock<String>,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new(0, Duration::from_secs(5))
    }
}

impl PasswordHasher {
    /// At most `limit` hashes at once (0: one per core), each waiting at most `wait` to start.
    pub fn new(limit: usize, wait: Duration) -> Self {
        let limit = match limit {
            0 => std::thread::available_parallelism().map_or(2, usize::from),
            n => n,
        };
        Self {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(limit)),
                memory: Mutex::new(Vec::new()),
                wait,
                decoy: OnceLock::new(),
            }),
        }
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let password = password.to_owned();
        self.run(move |memory| hash_with(memory, &password)).await?.map_err(Into::into)
    }

    /// Whether `password` matches `stored`; with `stored = None` checks against the decoy and
    /// answers `false`.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<bool, PasswordError> {
        let password = password.to_owned();
        let (stored, real) = match stored {
            Some(s) => (Some(s.to_owned()), true),
            None => (self.inner.decoy.get().cloned(), false),
        };
        let inner = self.inner.clone();
        let matches = self
            .run(move |memory| {
                let stored = match stored {
                    Some(stored) => stored,
                    None => {
                        let decoy = hash_with(memory, &uuid::Uuid::new_v4().to_string())?;
                        inner.decoy.get_or_init(|| decoy).clone()
                    }
                };
                verify_with(memory, &password, &stored)
            })
            .await??;
        Ok(matches && real)
    }

    /// Runs `job` on a blocking thread with a permit and a memory buffer.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit =
            tokio::time::timeout(self.inner.wait, self.inner.permits.clone().acquire_owned())
                .await
                .map_err(|_| PasswordError::Busy)?
                .map_err(|e| PasswordError::Failed(e.into()))?;
        let inner = self.inner.clone();
        let done = tokio::task::spawn_blocking(move || {
            let mut memory = inner.memory.lock().map(|mut pool| pool.pop()).ok().flatten();
            let buffer = memory.get_or_insert_with(Vec::new);
            let out = job(buffer);
            if let (Some(buffer), Ok(mut pool)) = (memory, inner.memory.lock()) {
                pool.push(buffer);
            }
            drop(permit);
            out
        });
        done.await.map_err(|e| PasswordError::Failed(e.into()))
    }
}

/// `memory` holding at least the blocks `params` needs.
fn blocks<'m>(memory: &'m mut Vec<Block>, params: &Params) -> &'m mut [Block] {
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    &mut memory[..params.block_count()]
}

fn hash_with(memory: &mut Vec<Block>, password: &str) -> anyhow::Result<String> {
    let failed = |e: argon2::Error| anyhow::anyhow!("hashing a password failed: {e}");
    let salt = SaltString::generate(&mut OsRng);
    let params = Params::default();
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes).map_err(anyhow::Error::msg)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut out,
            blocks(memory, &params),
        )
        .map_err(failed)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(anyhow::Error::msg)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(anyhow::Error::msg)?),
    };
    Ok(hash.to_string())
}

fn verify_with(memory: &mut Vec<Block>, password: &str, stored: &str) -> anyhow::Result<bool> {
    let corrupt = |why: String| anyhow::anyhow!("stored password hash is unusable: {why}");
    let hash = PasswordHash::new(stored).map_err(|e| corrupt(e.to_string()))?;
    let algorithm = Algorithm::try_from(hash.algorithm).map_err(|e| corrupt(e.to_string()))?;
    let version = hash
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| corrupt(e.to_string()))?
        .unwrap_or_default();
    let params = Params::try_from(&hash).map_err(|e| corrupt(e.to_string()))?;
    if params.m_cost() > MAX_MEMORY_KIB {
        return Err(corrupt(format!("it asks for {} KiB", params.m_cost())));
    }
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return Err(corrupt("no salt or no hash".to_owned()));
    };
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| corrupt(e.to_string()))?;
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut out,
            blocks(memory, &params),
        )
        .map_err(|e| corrupt(e.to_string()))?;
    // `Output`'s equality is constant-time.
    Ok(Output::new(&out).map_err(|e| corrupt(e.to_string()))? == expected)
}

#[cfg(test)]
mod tests {
    use argon2::PasswordVerifier as _;

    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ() {
        let hasher = PasswordHasher::default();
        let a = hasher.hash("Secret123!").await.unwrap();
        let b = hasher.hash("Secret123!").await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(hasher.verify("Secret123!", Some(&a)).await.unwrap());
        assert!(!hasher.verify("Secret123?", Some(&a)).await.unwrap());
        assert!(!hasher.verify("Secret123!", None).await.unwrap());
    }

    /// The hashes are the argon2 crate's own PHC strings, both ways, so hashes stored before
    /// (by `Argon2::default().hash_password`) still verify.
    #[tokio::test]
    async fn hashes_are_standard_phc_strings() {
        use argon2::PasswordHasher as _;
        let hasher = PasswordHasher::default();
        let ours = hasher.hash("Secret123!").await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"Secret123!", &parsed).is_ok());
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default().hash_password(b"Secret123!", &salt).unwrap().to_string();
        assert!(hasher.verify("Secret123!", Some(&theirs)).await.unwrap());
        assert!(
            hasher
                .verify("x", Some("$argon2id$v=19$m=999999999,t=2,p=1$c2FsdHNhbHQ$aGFzaA"))
                .await
                .is_err()
        );
    }

    /// Beyond the permits, checks wait their turn; past the wait they are refused, not run.
    #[tokio::test]
    async fn checks_beyond_the_limit_wait_then_are_refused() {
        let hasher = PasswordHasher::new(1, Duration::from_millis(1));
        let stored = hasher.hash("Secret123!").await.unwrap();
        let held = hasher.inner.permits.clone().acquire_owned().await.unwrap();
        assert!(matches!(
            hasher.verify("Secret123!", Some(&stored)).await,
            Err(PasswordError::Busy)
        ));
        drop(held);
        assert!(hasher.verify("Secret123!", Some(&stored)).await.unwrap());
        assert_eq!(hasher.inner.memory.lock().unwrap().len(), 1, "one buffer, reused");
    }
}
