//! The SQL that means the same on both backends, written once.
//!
//! Each file here implements one of the store's traits inside [`for_each_backend!`], which
//! compiles it twice: once with `Db` standing for [`crate::postgres::PgStore`], once for
//! [`crate::sqlite::SqliteStore`]. Statements use `$1`-style parameters, which both drivers take,
//! and Postgres' column types (`INTEGER` decodes as `i32`, `SMALLINT` as `i16`), which SQLite's
//! driver decodes as well. Each backend gives these blocks what differs, under the same names:
//!
//! - `pool`, where reads go, and `writer`, where writes go (one pool on Postgres; on SQLite, a
//!   reader pool beside the one writer connection): see [`connections`];
//! - `BEGIN`, how it starts a write transaction ([`crate::tx`]: every write goes through one);
//! - `DB_NOW_MS`: the database's clock in a statement (replicas coordinate on it, not on
//!   their own clocks);
//! - `FOR_UPDATE`, `FOR_SHARE`: its row-lock clauses (empty on SQLite, whose write transactions
//!   hold the whole database);
//! - the few statements that really differ, as functions of its own in its `batch.rs`: batches
//!   written with arrays in one statement on Postgres, a loop of prepared statements on SQLite.

/// Compiles the items once for each backend, `Db` being the backend's store type. Defined
/// before the modules below, so they see it.
macro_rules! for_each_backend {
    ($($item:item)*) => {
        mod on_postgres {
            #[allow(unused_imports)]
            use super::*;
            type Db = $crate::postgres::PgStore;
            #[allow(dead_code)]
            type Database = sqlx::Postgres;
            /// The database server's clock, Unix ms, as read by a statement.
            #[allow(dead_code)]
            const DB_NOW_MS: &str =
                "(floor(extract(epoch FROM clock_timestamp()) * 1000))::bigint";
            $($item)*
        }
        mod on_sqlite {
            #[allow(unused_imports)]
            use super::*;
            type Db = $crate::sqlite::SqliteStore;
            #[allow(dead_code)]
            type Database = sqlx::Sqlite;
            /// The clock of the machine holding the database file (every process that opens
            /// it runs there), Unix ms, as read by a statement.
            #[allow(dead_code)]
            const DB_NOW_MS: &str =
                "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";
            $($item)*
        }
    };
}

mod accounts;
mod browse;
mod cloud;
mod connections;
mod contacts;
mod customers;
mod documents;
mod idempotency;
mod inbox;
mod inventory;
mod journal;
mod media;
mod pipeline;
mod retention;
pub(crate) mod sandbox;

/// `statement` with the backend's row-lock clause appended.
fn locking(statement: &str, clause: &str) -> String {
    format!("{statement}{clause}")
}

/// A queue row no worker reads (shard -1), for [`crate::Store::probe`].
pub(crate) const PROBE: &str = "INSERT INTO messages
     (id, recipient, recipient_crc, shard, payload, accepted_at, updated_at)
     VALUES ('premise:probe', '', 0, -1, $1, 0, 0)";

/// What [`crate::Store::probe`] writes: as large as a typical message's stored request.
pub(crate) const PROBE_PAYLOAD: &str = concat!(
    r#"{"to":"00000","type":"text","text":{"body":""#,
    "premise probe: a write as large as a message, never committed or deleted at once; ",
    "premise probe: a write as large as a message, never committed or deleted at once; ",
    "premise probe: a write as large as a message.",
    r#""}}"#
);
