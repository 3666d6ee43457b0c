//! Write transactions that a fault cannot turn into silent loss.
//!
//! SQLite rolls a transaction back by itself on some errors (`SQLITE_FULL`, `SQLITE_IOERR`,
//! `SQLITE_NOMEM`, sometimes `SQLITE_BUSY`). sqlx's transaction tracking does not notice: its
//! rollback then fails, it still counts a transaction as open, and every later `begin()` on that
//! connection becomes a `SAVEPOINT` whose "commit" only releases the savepoint inside an outer
//! transaction that never commits. Acknowledged writes are then lost (a disk-full test saw
//! thousands of 201s for messages never stored).
//!
//! [`Tx`] therefore issues `BEGIN` and `COMMIT` itself, so a commit that returns is a real
//! `COMMIT` the database confirmed, and a `BEGIN` on a connection that is somehow still in a
//! transaction fails instead of nesting. A `Tx` dropped without a confirmed commit (an error, a
//! failed commit, a cancelled request) closes its connection instead of returning it to the
//! pool: the database rolls back whatever was open, and the pool opens a fresh connection for
//! the next write.

use sqlx::pool::PoolConnection;
use sqlx::{Database, Executor, Pool};

/// One write transaction on a connection of its own.
#[derive(Debug)]
pub(crate) struct Tx<DB: Database> {
    conn: PoolConnection<DB>,
    /// Whether the transaction ended as the database confirmed (committed or rolled back).
    committed: bool,
}

impl<DB: Database> Tx<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    /// Takes a connection from `pool` and starts a transaction with `begin` (`BEGIN`, or
    /// SQLite's `BEGIN IMMEDIATE` to take the write lock at once).
    pub async fn begin(pool: &Pool<DB>, begin: &'static str) -> Result<Self, sqlx::Error> {
        let conn = pool.acquire().await?;
        // Made before the `BEGIN`, so a failed `BEGIN` also closes the connection.
        let mut tx = Self { conn, committed: false };
        tx.conn().execute(begin).await?;
        Ok(tx)
    }

    /// The connection, to run the transaction's statements on.
    pub fn conn(&mut self) -> &mut DB::Connection {
        &mut self.conn
    }

    /// Commits. An error means nothing of the transaction may be counted as stored; the
    /// connection is then closed.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        self.conn().execute("COMMIT").await?;
        self.committed = true;
        Ok(())
    }
}

impl<DB: Database> Drop for Tx<DB> {
    fn drop(&mut self) {
        if !self.committed {
            self.conn.close_on_drop();
        }
    }
}
