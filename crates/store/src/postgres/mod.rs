//! The Postgres backend: production, and any number of replicas on one database.
//!
//! The SQL both backends share is in [`crate::sql`]; here is what is Postgres' own: the pool
//! (with its own check of dead connections, see [`PgStore::open`]) and the connections the busy
//! loops keep out of it ([`PgStore::kept`]), row locks, migrations, the probe, and in `batch.rs`
//! the statements that take whole arrays at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres};

use crate::{Backend, ConnectOptions, Health, StoreError};

mod batch;

static MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

/// A connection shown alive less than this ago is used without a ping: one back in the pool
/// (the pool pinged it as it came back), or one a busy loop kept (its last statement succeeded).
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
    /// Connections kept out of the pool between the statements of the loops that write all
    /// the time, see [`PgStore::kept`].
    kept: Arc<Kept>,
}

/// Connections of the pool that the busy loops keep between their statements, each with when
/// it was last used, and how many may be kept.
#[derive(Debug)]
struct Kept {
    connections: Mutex<Vec<(PoolConnection<Postgres>, Instant)>>,
    at_most: usize,
}

/// A connection taken for one statement (or a few) of a busy loop: given back with
/// [`KeptConnection::keep`] after a success, to the pool otherwise (which pings it, and closes
/// it if broken).
pub(crate) struct KeptConnection<'a> {
    connection: PoolConnection<Postgres>,
    kept: &'a Kept,
}

impl KeptConnection<'_> {
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        &mut self.connection
    }

    /// Keeps the connection for the next statement, unless enough are kept already.
    pub(crate) fn keep(self) {
        let mut kept = self.kept.connections.lock().expect("kept connections");
        if kept.len() < self.kept.at_most {
            kept.push((self.connection, Instant::now()));
        }
    }
}

impl PgStore {
    pub(crate) const BACKEND: Backend = Backend::Postgres;
    pub(crate) const MIGRATOR: &'static Migrator = &MIGRATIONS;
    pub(crate) const FOR_UPDATE: &'static str = " FOR UPDATE";
    pub(crate) const FOR_SHARE: &'static str = " FOR SHARE";
    pub(crate) const BEGIN: &'static str = "BEGIN";

    pub async fn open(url: &str, options: &ConnectOptions) -> Result<Self, StoreError> {
        let connect: PgConnectOptions = url.parse()?;
        // One attempt first, so a server that is not there says why (refused, unknown host,
        // wrong password) rather than the pool's "timed out".
        if let Err(StoreError::Database(source)) = reach(&connect).await {
            let at = format!("{}:{}", connect.get_host(), connect.get_port());
            return Err(StoreError::CannotReach { at, source });
        }
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
        // The committer, the recorder, the dispatcher and the sandbox: with the default ten
        // connections four kept, never more than half less one, so the rest of the pool is
        // always there for requests.
        let at_most = (options.max_connections.saturating_sub(1) / 2).min(4) as usize;
        let kept = Arc::new(Kept { connections: Mutex::new(Vec::new()), at_most });
        Ok(Self { writer: pool.clone(), pool, connect, health, kept })
    }

    /// A connection for the statements of a loop that writes all the time (group commits,
    /// status recording, callback delivery). Given back to the pool after each statement, a
    /// connection is pinged, a round trip as costly as a small statement; kept, it is not, and
    /// is checked only when it sat unused for [`PROVEN_FOR`]. A dead one is dropped and, as
    /// for a dead pooled one, one fresh attempt tells whether the database is gone (the
    /// outage is then known at once); if it is there, a connection is taken from the pool.
    pub(crate) async fn kept(&self) -> Result<KeptConnection<'_>, StoreError> {
        let last = self.kept.connections.lock().expect("kept connections").pop();
        if let Some((mut connection, used)) = last {
            if used.elapsed() < PROVEN_FOR || connection.ping().await.is_ok() {
                return Ok(KeptConnection { connection, kept: &self.kept });
            }
            if let Err(gone) = reach(&self.connect).await {
                self.health.record_failure(&gone);
                return Err(gone);
            }
        }
        let connection = self.pool.acquire().await?;
        Ok(KeptConnection { connection, kept: &self.kept })
    }

    /// [`crate::Store::probe`]: one attempt to connect first (the pool would retry a refused
    /// connection until its timeout), then a message-sized insert: in Postgres an
    /// insert that finds no room extends the table at once, so this fails exactly when a
    /// message would. The row is deleted again and the transaction committed, so the probe
    /// waits as a message's commit does (for a synchronous standby, say) and leaves nothing.
    pub(crate) async fn probe_write(&self) -> Result<(), StoreError> {
        reach(&self.connect).await?;
        let mut tx = self.tx().await?;
        sqlx::query(crate::sql::PROBE).bind(crate::sql::PROBE_PAYLOAD).execute(tx.conn()).await?;
        sqlx::query("DELETE FROM messages WHERE id = 'premise:probe'").execute(tx.conn()).await?;
        tx.commit().await?;
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

#[cfg(test)]
mod tests {
    use premise_testkit::{Cluster, ClusterOptions, fresh_postgres_url};

    use super::*;

    async fn open(max_connections: u32) -> PgStore {
        let options =
            ConnectOptions { max_connections, acquire_timeout: Duration::from_millis(500) };
        PgStore::open(&fresh_postgres_url().await, &options).await.unwrap()
    }

    fn kept(store: &PgStore) -> usize {
        store.kept.connections.lock().unwrap().len()
    }

    /// Time driven, not slept: the kept connections last used `PROVEN_FOR` earlier.
    fn unused_for_long(store: &PgStore) {
        for (_, used) in store.kept.connections.lock().unwrap().iter_mut() {
            *used = used.checked_sub(PROVEN_FOR).unwrap();
        }
    }

    async fn backend(connection: &mut KeptConnection<'_>) -> Result<i32, sqlx::Error> {
        sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(connection.conn()).await
    }

    /// Ends a connection from the database's side, as a restart or an administrator does.
    async fn terminate(store: &PgStore, pid: i32) {
        let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert!(ended);
    }

    /// The enqueue, one or two messages a batch (an open load of ~1,000 msg/s), is planned
    /// once per connection and then runs its generic plan: planned for each batch's size it
    /// cost more to plan than to run.
    #[tokio::test]
    async fn small_enqueues_run_one_generic_plan() {
        // Three connections: one is kept, and every statement here runs on it.
        let store = open(3).await;
        crate::Store::migrate(&store).await.unwrap();
        for n in 0..12 {
            let message = crate::NewMessage {
                id: format!("plan-{n}"),
                recipient: crate::Routed::new(format!("1631555{n:04}")),
                payload: "{}".to_owned(),
                accepted_at: premise_base::UnixMs(1_000 + n),
                callback_data: None,
                credential: None,
                idempotency: None,
            };
            store.enqueue_batch(&[message]).await.unwrap();
        }
        let mut connection = store.kept().await.unwrap();
        let (generic, custom): (i64, i64) = sqlx::query_as(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements
             WHERE statement LIKE 'WITH account_row%'",
        )
        .fetch_one(connection.conn())
        .await
        .unwrap();
        assert!(generic >= 6 && custom <= 6, "{generic} generic plans, {custom} custom");
    }

    #[tokio::test]
    async fn kept_connections_leave_the_rest_of_the_pool_to_requests() {
        let store = open(3).await;
        let (a, b) = (store.kept().await.unwrap(), store.kept().await.unwrap());
        a.keep();
        b.keep();
        assert_eq!(kept(&store), 1, "three connections: one kept at most");
        let (_c, _d) = (store.pool.acquire().await.unwrap(), store.pool.acquire().await.unwrap());
        // The kept one is taken again, not a third from the pool (which has none left).
        let mut again = store.kept().await.unwrap();
        backend(&mut again).await.unwrap();

        let small = open(2).await;
        small.kept().await.unwrap().keep();
        assert_eq!(kept(&small), 0, "with two connections none is kept");
    }

    #[tokio::test]
    async fn a_kept_connection_that_died_is_not_used_again() {
        let store = open(4).await;
        let mut connection = store.kept().await.unwrap();
        let first = backend(&mut connection).await.unwrap();
        connection.keep();
        terminate(&store, first).await;
        // Unused for long enough to be checked: the check finds it dead, a live one is taken.
        unused_for_long(&store);
        let mut connection = store.kept().await.unwrap();
        let second = backend(&mut connection).await.unwrap();
        assert_ne!(second, first);
        connection.keep();

        // Used just now, it is not checked: its statement fails, and it is not kept.
        terminate(&store, second).await;
        let mut connection = store.kept().await.unwrap();
        assert!(backend(&mut connection).await.is_err());
        drop(connection);
        assert_eq!(kept(&store), 0);
        let mut connection = store.kept().await.unwrap();
        let third = backend(&mut connection).await.unwrap();
        assert!(third != first && third != second);
    }

    #[tokio::test]
    async fn a_kept_connection_found_dead_with_the_database_gone_tells_the_outage_at_once() {
        let cluster = Cluster::start(&ClusterOptions::default());
        let options =
            ConnectOptions { max_connections: 4, acquire_timeout: Duration::from_secs(5) };
        let store = PgStore::open(&cluster.fresh_database().await, &options).await.unwrap();
        let mut connection = store.kept().await.unwrap();
        backend(&mut connection).await.unwrap();
        connection.keep();
        cluster.stop();
        unused_for_long(&store);
        let asked = Instant::now();
        let outcome = store.kept().await;
        assert!(outcome.is_err());
        assert!(asked.elapsed() < Duration::from_secs(2), "not after the acquire timeout");
        assert!(store.health.down().is_some_and(|d| d.unreachable()), "{:?}", store.health.down());
    }
}
