//! The Postgres backend: production, and any number of replicas on one database.
//!
//! The SQL both backends share is in [`crate::sql`]; here is what is Postgres' own: the pool
//! (with its own check of dead connections, see [`PgStore::open`]), row locks, migrations, the
//! probe, and in `batch.rs` the statements that take whole arrays at once.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::{Backend, ConnectOptions, Health, StoreError};

mod batch;

static MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

/// A connection back in the pool for less than this is handed out without a ping: the pool's
/// own ping as it came back showed it alive.
const PROVEN_FOR: Duration = Duration::from_millis(500);

/// How long a single attempt to reach the database may take when checking whether it is there.
const REACH_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct PgStore {
    /// Reads and writes share one pool.
    pub(crate) pool: PgPool,
    pub(crate) writer: PgPool,
    connect: PgConnectOptions,
    pub(crate) health: Health,
}

impl PgStore {
    pub(crate) const BACKEND: Backend = Backend::Postgres;
    pub(crate) const MIGRATOR: &'static Migrator = &MIGRATIONS;
    pub(crate) const FOR_UPDATE: &'static str = " FOR UPDATE";
    pub(crate) const FOR_SHARE: &'static str = " FOR SHARE";
    pub(crate) const BEGIN: &'static str = "BEGIN";

    pub async fn open(url: &str, options: &ConnectOptions) -> Result<Self, StoreError> {
        let connect: PgConnectOptions = url.parse()?;
        let health = Health::default();
        let (hook_connect, hook_health) = (connect.clone(), health.clone());
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            // Instead of the pool's own ping, which hides a dead connection and then retries
            // refused connections until the acquire timeout: when a pooled connection is dead,
            // one fresh attempt tells whether the database is gone, and the outage is known at
            // once (see `crate::health`). The pool pings every connection as it comes back, so
            // one back for less than `PROVEN_FOR` was just seen alive and is not asked again:
            // on a busy pool that was a second round trip for every statement.
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                let (connect, health) = (hook_connect.clone(), hook_health.clone());
                Box::pin(async move {
                    if meta.idle_for < PROVEN_FOR {
                        return Ok(true);
                    }
                    if let Err(dead) = conn.ping().await {
                        if let Err(gone) = reach(&connect).await {
                            health.record_failure(&gone);
                        }
                        return Err(dead);
                    }
                    Ok(true)
                })
            })
            .connect_with(connect.clone())
            .await?;
        Ok(Self { writer: pool.clone(), pool, connect, health })
    }

    /// [`crate::Store::probe`]: one attempt to connect first (the pool would retry a refused
    /// connection until its timeout), then a message-sized insert, rolled back: in Postgres an
    /// insert that finds no room extends the table at once, so this fails exactly when a
    /// message would.
    pub(crate) async fn probe_write(&self) -> Result<(), StoreError> {
        reach(&self.connect).await?;
        let mut tx = self.tx().await?;
        sqlx::query(crate::sql::PROBE).bind(crate::sql::PROBE_PAYLOAD).execute(tx.conn()).await?;
        tx.rollback().await?;
        Ok(())
    }
}

/// One attempt to connect, outside the pool: `Ok` if the database is there.
async fn reach(connect: &PgConnectOptions) -> Result<(), StoreError> {
    match tokio::time::timeout(REACH_TIMEOUT, PgConnection::connect_with(connect)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(sqlx::Error::PoolTimedOut.into()),
    }
}
