//! The SQLite backend: the embedded default for a single node, development and CI.
//!
//! The file is created if missing, in WAL mode with `synchronous = FULL`, so a commit that has
//! returned survives a crash of the process or of the machine. The SQL both backends share is
//! in [`crate::sql`]; here is what is SQLite's own: a reader pool beside one writer, write
//! transactions that take the write lock at once, the probe, and in `batch.rs` batches passed
//! as JSON arrays (SQLite has no array parameters).

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::{Backend, ConnectOptions, Health, StoreError};

mod batch;

static MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers (WAL lets them run beside the writer).
    pub(crate) pool: SqlitePool,
    /// The one writer: SQLite takes one write transaction at a time, and queueing for it here
    /// is cheaper and kinder than `SQLITE_BUSY` between our own connections.
    pub(crate) writer: SqlitePool,
    pub(crate) health: Health,
}

impl SqliteStore {
    pub(crate) const BACKEND: Backend = Backend::Sqlite;
    pub(crate) const MIGRATOR: &'static Migrator = &MIGRATIONS;
    /// A write transaction holds the whole database: no row locks to take.
    pub(crate) const FOR_UPDATE: &'static str = "";
    pub(crate) const FOR_SHARE: &'static str = "";
    /// Takes the write lock at once, rather than when the first write comes.
    pub(crate) const BEGIN: &'static str = "BEGIN IMMEDIATE";

    pub async fn open(url: &str, options: &ConnectOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let file = connect.get_filename();
        if file.is_dir() {
            return Err(StoreError::BadUrl(format!(
                "{} is a directory; name the database file in it (e.g. sqlite://{}/premise.db)",
                file.display(),
                file.display()
            )));
        }
        // The file's own directory is made if missing (`data/` on a first run), but not a
        // whole missing path: that is a mistyped URL more often than a wish.
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            let within = dir.parent().filter(|p| !p.as_os_str().is_empty());
            if within.is_some_and(|p| !p.is_dir()) {
                return Err(StoreError::BadUrl(format!(
                    "the directory {} does not exist, nor does {}: create it, or name a file in \
                     an existing directory",
                    dir.display(),
                    within.map(|p| p.display().to_string()).unwrap_or_default()
                )));
            }
            std::fs::create_dir(dir).map_err(|source| StoreError::SqliteDirectory {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        Ok(Self { pool, writer: write, health: Health::default() })
    }

    /// [`crate::Store::probe`]: a message-sized insert, deleted and committed. SQLite writes to
    /// its WAL only at commit, so only a commit tests for room.
    pub(crate) async fn probe_write(&self) -> Result<(), StoreError> {
        let mut tx = self.tx().await?;
        sqlx::query(crate::sql::PROBE).bind(crate::sql::PROBE_PAYLOAD).execute(tx.conn()).await?;
        sqlx::query("DELETE FROM messages WHERE id = 'premise:probe'").execute(tx.conn()).await?;
        tx.commit().await?;
        Ok(())
    }
}
