//! What can go wrong in the store, as callers need to tell it apart.

/// A storage failure. Callers log it with its chain and answer clients with an opaque error;
/// the database's message is never sent over the wire.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL must start with sqlite:// or postgres:// (got scheme {0:?})")]
    UnsupportedUrl(String),
    /// The URL names something that cannot be a database, and says what to write instead.
    #[error("database.url: {0}")]
    BadUrl(String),
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
    /// Postgres could not be reached when the store was opened.
    #[error(
        "cannot reach the Postgres server at {at} (is it running, and are the host, port, user and password in database.url right?)"
    )]
    CannotReach {
        at: String,
        #[source]
        source: sqlx::Error,
    },
}

/// Why the database cannot serve right now: a fault of the database or its machine, not of the
/// request, that clears by itself or by an operator's hand (space freed, server restarted).
/// Callers answer 503 and try again later; nothing was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// No room left: the disk or the database's quota is full.
    DiskFull,
    /// The database cannot be reached, or went away mid-request.
    Unreachable,
    /// The disk or the database failed to read or write.
    Io,
    /// The database is shutting down, starting up, read-only or out of a resource.
    NotAccepting,
    /// The database is too busy to take the write now (locks, serialization conflicts).
    Busy,
    /// Commits are not confirmed in time (Postgres waiting for a synchronous standby that is
    /// gone, a storage that hangs).
    Stalled,
}

impl Outage {
    /// A short text for an operator or a client, naming no internals.
    pub fn describe(self) -> &'static str {
        match self {
            Self::DiskFull => "the database's disk is full",
            Self::Unreachable => "the database cannot be reached",
            Self::Io => "the database's storage failed to read or write",
            Self::NotAccepting => "the database is not accepting writes",
            Self::Busy => "the database is too busy",
            Self::Stalled => "the database does not confirm commits (a synchronous standby lost?)",
        }
    }
}

impl StoreError {
    /// The outage this error shows, if it is one (rather than a bug or corrupt data).
    pub fn outage(&self) -> Option<Outage> {
        match self {
            Self::Database(e) => outage_of(e),
            Self::Migrate(sqlx::migrate::MigrateError::Execute(e)) => outage_of(e),
            Self::SqliteDirectory { .. } => Some(Outage::Io),
            Self::CannotReach { .. } => Some(Outage::Unreachable),
            _ => None,
        }
    }
}

fn outage_of(error: &sqlx::Error) -> Option<Outage> {
    match error {
        sqlx::Error::Io(e) if e.raw_os_error() == Some(28) => Some(Outage::DiskFull),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Some(Outage::Unreachable),
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                postgres_outage(pg.code())
            } else if let Some(sqlite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                // The extended result code; the primary code is its low byte.
                sqlite_outage(sqlx::error::DatabaseError::code(sqlite)?.parse::<i64>().ok()? & 0xff)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// SQLite's primary result codes (sqlite.org/rescode.html).
fn sqlite_outage(primary: i64) -> Option<Outage> {
    match primary {
        13 => Some(Outage::DiskFull),        // SQLITE_FULL
        10 | 14 | 15 => Some(Outage::Io),    // SQLITE_IOERR, CANTOPEN, PROTOCOL
        7 | 8 => Some(Outage::NotAccepting), // SQLITE_NOMEM, READONLY
        5 | 6 => Some(Outage::Busy),         // SQLITE_BUSY, LOCKED
        _ => None,
    }
}

/// Postgres SQLSTATEs (postgresql.org/docs/current/errcodes-appendix.html).
fn postgres_outage(sqlstate: &str) -> Option<Outage> {
    match sqlstate {
        "53100" => Some(Outage::DiskFull),                     // disk_full
        s if s.starts_with("08") => Some(Outage::Unreachable), // connection exception
        s if s.starts_with("53") || s.starts_with("57") || s == "25006" => {
            // insufficient resources, operator intervention (shutdown, cannot connect now),
            // read-only transaction (a standby after a failover)
            Some(Outage::NotAccepting)
        }
        s if s.starts_with("58") => Some(Outage::Io), // system error (I/O)
        "40001" | "40P01" | "55P03" => Some(Outage::Busy), // serialization, deadlock, lock
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_outages() {
        assert_eq!(sqlite_outage(13), Some(Outage::DiskFull));
        assert_eq!(sqlite_outage(3338 & 0xff), Some(Outage::Io), "SQLITE_IOERR_WRITE");
        assert_eq!(sqlite_outage(19), None, "a constraint is a bug, not an outage");
        assert_eq!(postgres_outage("53100"), Some(Outage::DiskFull));
        assert_eq!(postgres_outage("57P01"), Some(Outage::NotAccepting), "admin shutdown");
        assert_eq!(postgres_outage("08006"), Some(Outage::Unreachable));
        assert_eq!(postgres_outage("23505"), None, "unique violation");
        let io = std::io::Error::from_raw_os_error(28);
        assert_eq!(StoreError::Database(sqlx::Error::Io(io)).outage(), Some(Outage::DiskFull));
        assert_eq!(
            StoreError::Database(sqlx::Error::PoolTimedOut).outage(),
            Some(Outage::Unreachable)
        );
        assert_eq!(StoreError::Corrupt("x".into()).outage(), None);
    }
}
