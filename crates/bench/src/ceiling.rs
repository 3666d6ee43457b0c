//! The database's own ceiling: how many single-row durable INSERT + COMMITs per second it takes
//! from as many concurrent clients as the scenario has. What one transaction per request would
//! give; group commit has to beat it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::{Executor, Pool};

const ROW: &str = r#"{"to":"15550000001","type":"text","recipient_type":"individual","text":{"body":"Your order #00000 has shipped and is on its way. Track it any time in the app; we will let you know when it is out for delivery. Thank you for shopping with us, and have a wonderful day!"}}"#;

/// Inserts per second on a Postgres database (a scratch table in it).
pub async fn postgres(url: &str, clients: usize, duration: Duration) -> anyhow::Result<f64> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(clients as u32)
        .min_connections(clients as u32)
        .connect(url)
        .await?;
    pool.execute("CREATE TABLE bench_ceiling (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL)")
        .await?;
    let rate =
        hammer(&pool, clients, duration, "INSERT INTO bench_ceiling (payload) VALUES ($1)").await?;
    pool.execute("DROP TABLE bench_ceiling").await?;
    pool.close().await;
    Ok(rate)
}

/// Inserts per second on a SQLite file with Premise's settings (WAL, `synchronous = FULL`).
pub async fn sqlite(
    path: &std::path::Path,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(30));
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(clients as u32)
        .connect_with(options)
        .await?;
    pool.execute("CREATE TABLE bench_ceiling (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
        .await?;
    let rate =
        hammer(&pool, clients, duration, "INSERT INTO bench_ceiling (payload) VALUES (?)").await?;
    pool.close().await;
    Ok(rate)
}

async fn hammer<DB>(
    pool: &Pool<DB>,
    clients: usize,
    duration: Duration,
    insert: &'static str,
) -> anyhow::Result<f64>
where
    DB: sqlx::Database,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'c> &'c Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (pool, done) = (pool.clone(), done.clone());
        tasks.spawn(async move {
            while Instant::now() < deadline {
                sqlx::query(insert).bind(ROW).execute(&pool).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, sqlx::Error>(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}
