//! Picking a backend from the database URL and opening it.

use std::sync::Arc;
use std::time::Duration;

use crate::{Store, StoreError, postgres::PgStore, sqlite::SqliteStore};

/// Pool settings shared by both backends.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self { max_connections: 10, acquire_timeout: Duration::from_secs(5) }
    }
}

/// Opens the store named by `url`: `sqlite://PATH` (created if missing, WAL mode) or
/// `postgres://...` / `postgresql://...`. Does not migrate; call [`Store::migrate`].
pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Arc<dyn Store>, StoreError> {
    let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
    match scheme {
        "sqlite" if !url.starts_with("sqlite://") => Err(StoreError::BadUrl(format!(
            "{url:?} is not a SQLite URL: write sqlite://PATH, with two slashes \
             (sqlite://data/premise.db for a path relative to the working directory, \
             sqlite:///var/lib/premise/premise.db for an absolute one)"
        ))),
        "sqlite" => Ok(Arc::new(SqliteStore::open(url, options).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(PgStore::open(url, options).await?)),
        other => Err(StoreError::UnsupportedUrl(other.to_owned())),
    }
}
