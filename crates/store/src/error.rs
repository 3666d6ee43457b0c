//! What can go wrong in the store, as callers need to tell it apart.

/// A storage failure. Callers log it with its chain and answer clients with an opaque error;
/// the database's message is never sent over the wire.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL must start with sqlite:// or postgres:// (got scheme {0:?})")]
    UnsupportedUrl(String),
    #[error("cannot prepare the SQLite database directory {path}")]
    SqliteDirectory {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
}
