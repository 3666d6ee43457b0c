//! A throwaway Postgres cluster per test process, and a database per test.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

const INSTALL_HINT: &str = "Postgres tests need the PostgreSQL server binaries (initdb, postgres). \
    Install them with `apt-get install -y postgresql` (they land in /usr/lib/postgresql/<version>/bin), \
    or set DATABASE_URL to a Postgres server where this user may CREATE DATABASE.";

/// A Postgres server and the URL to administer it; databases are created on it per test. A
/// cluster this process started is stopped and removed when the value is dropped (or the
/// process dies).
#[derive(Debug)]
pub struct Cluster {
    admin_url: String,
    /// The data directory of a cluster this process started.
    data: Option<PathBuf>,
    /// How to start this cluster's `postgres` again after [`Cluster::stop`], and its log.
    server: Option<(Command, PathBuf)>,
    /// The watchdog and its stdin, held and never written: the pipe closing (at drop or process
    /// exit) tells the watchdog to stop Postgres and clean up.
    _watchdog: Option<Mutex<(Child, ChildStdin)>>,
}

/// How to make a throwaway cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// fsync and synchronous commit on, like production (for measurements and fault tests);
    /// off, tests run faster.
    pub durable: bool,
    /// The directory to put the cluster in (a small disk, say); the system's temporary
    /// directory when `None`. It must let the Postgres account write.
    pub parent: Option<PathBuf>,
    /// 1 MB WAL segments instead of 16 MB, for a cluster that must fit a small disk.
    pub small_wal: bool,
}

impl Cluster {
    /// An existing server, e.g. from `DATABASE_URL`; nothing is started or stopped.
    pub fn existing(admin_url: &str) -> Self {
        Self { admin_url: admin_url.to_owned(), data: None, server: None, _watchdog: None }
    }

    /// A new cluster from the local binaries, durable like production (fsync and synchronous
    /// commit on): for measurements. Tests use the faster non-durable one of
    /// [`fresh_postgres_url`].
    pub fn start_durable() -> Self {
        start_cluster(&ClusterOptions { durable: true, ..ClusterOptions::default() })
    }

    /// The server's log so far, for a cluster this process started.
    pub fn log(&self) -> String {
        let Some((_, log)) = &self.server else { return String::new() };
        std::fs::read_to_string(log).unwrap_or_default()
    }

    /// A new cluster from the local binaries, as `options` say.
    pub fn start(options: &ClusterOptions) -> Self {
        start_cluster(options)
    }

    /// Whether the postmaster of a cluster this process started is running.
    pub fn running(&self) -> bool {
        self.postmaster_pid().is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
    }

    /// Stops the server (a fast shutdown: clients are disconnected) and waits until it is
    /// gone. Only for a cluster this process started.
    pub fn stop(&self) {
        let pid = self.postmaster_pid().expect("a running cluster this process started");
        let ok = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -INT {pid}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Path::new(&format!("/proc/{pid}")).exists() {
            assert!(Instant::now() < deadline, "Postgres {pid} did not stop within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again after [`Cluster::stop`], on the same port, and waits until it
    /// listens.
    pub fn restart(&self) {
        let (stored, log) = self.server.as_ref().expect("a cluster this process started");
        // Started in the background by a shell that returns at once, so the server is nobody's
        // child here; the watchdog stops whichever postmaster runs when the test process ends.
        let ok = Command::new("sh")
            .arg("-c")
            .arg(r#"log="$1"; shift; "$@" >>"$log" 2>&1 </dev/null &"#)
            .arg("sh")
            .arg(log)
            .arg(stored.get_program())
            .args(stored.get_args())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "start Postgres again");
        wait_for_port(self.port(), log);
    }

    fn port(&self) -> u16 {
        let authority = self.admin_url.rsplit('@').next().unwrap_or_default();
        let port = authority.split(['/', ':']).nth(1).unwrap_or_default();
        port.parse().expect("the admin URL names a port")
    }

    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// The postmaster's process id, for a cluster this process started.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let pid_file = std::fs::read_to_string(self.data.as_ref()?.join("postmaster.pid")).ok()?;
        pid_file.lines().next()?.trim().parse().ok()
    }

    /// A URL to a new, empty database on this server.
    pub async fn fresh_database(&self) -> String {
        let name = format!("premise_test_{}", crate::unique_suffix().replace('-', "_"));
        let mut conn = connect_with_retry(&self.admin_url).await;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on the test server failed: {e}"));
        with_database(&self.admin_url, &name)
    }
}

static SERVER: OnceLock<Cluster> = OnceLock::new();

/// A URL to a new, empty database on the test Postgres server: `DATABASE_URL`'s server when
/// set, otherwise a throwaway cluster (fsync off) shared by the test process.
pub async fn fresh_postgres_url() -> String {
    let server = SERVER.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Cluster::existing(&url),
        _ => start_cluster(&ClusterOptions::default()),
    });
    server.fresh_database().await
}

async fn connect_with_retry(url: &str) -> PgConnection {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match PgConnection::connect(url).await {
            Ok(conn) => return conn,
            Err(e) if Instant::now() > deadline => {
                panic!("cannot connect to the test Postgres server: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Replaces the database name (the last path segment) of a Postgres URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

fn start_cluster(options: &ClusterOptions) -> Cluster {
    let bin = find_postgres_bin().unwrap_or_else(|| panic!("{INSTALL_HINT}"));
    let parent = options.parent.clone().unwrap_or_else(std::env::temp_dir);
    let dir = parent.join(format!("premise-pg-{}", crate::unique_suffix()));
    let data = dir.join("data");
    std::fs::create_dir_all(&dir).expect("create the cluster directory");

    // Postgres refuses to run as root: run it as `postgres` (or `nobody`) when we are root.
    let run_as = if running_as_root() { Some(unprivileged_user()) } else { None };
    if let Some(user) = &run_as {
        let ok =
            Command::new("chown").args(["-R", user]).arg(&dir).status().is_ok_and(|s| s.success());
        assert!(ok, "chown {} to {user} failed", dir.display());
    }
    let as_user = |program: &Path| -> Command {
        match &run_as {
            Some(user) => {
                let mut cmd = Command::new("setpriv");
                cmd.args([
                    &format!("--reuid={user}"),
                    &format!("--regid={user}"),
                    "--init-groups",
                    "--",
                ])
                .arg(program);
                cmd
            }
            None => Command::new(program),
        }
    };

    let mut initdb = as_user(&bin.join("initdb"));
    initdb.args(["-U", "premise", "--auth=trust", "--no-sync", "-E", "UTF8"]);
    if options.small_wal {
        initdb.arg("--wal-segsize=1");
    }
    let out = initdb
        .arg("-D")
        .arg(&data)
        .output()
        .unwrap_or_else(|e| panic!("running initdb failed: {e}. {INSTALL_HINT}"));
    assert!(out.status.success(), "initdb failed:\n{}", String::from_utf8_lossy(&out.stderr));

    let port = free_port();
    let log = dir.join("postgres.log");
    let mut postgres = as_user(&bin.join("postgres"));
    postgres.arg("-D").arg(&data).args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"]);
    postgres.arg(&dir).args(["-c", "max_connections=300"]);
    if options.small_wal {
        postgres.args(["-c", "min_wal_size=2MB", "-c", "max_wal_size=4MB"]);
    }
    if !options.durable {
        postgres.args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]);
    }
    // The watchdog: start Postgres, wait for our end of the pipe to close, stop whichever
    // postmaster runs then (a test may have restarted it), clean up.
    let script = r#"dir="$1"; log="$2"; data="$3"; shift 3
        "$@" >"$log" 2>&1 &
        cat >/dev/null
        pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null)
        if [ -n "$pid" ]; then
            kill -INT "$pid" 2>/dev/null
            while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
        fi
        wait
        rm -rf "$dir""#;
    let mut watchdog = Command::new("sh");
    watchdog.arg("-c").arg(script).arg("sh").arg(&dir).arg(&log).arg(&data);
    watchdog.arg(postgres.get_program()).args(postgres.get_args());
    let mut child = watchdog
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the Postgres watchdog");
    let stdin = child.stdin.take().expect("watchdog stdin");

    wait_for_port(port, &log);
    Cluster {
        admin_url: format!("postgres://premise@127.0.0.1:{port}/postgres"),
        data: Some(data),
        server: Some((postgres, log)),
        _watchdog: Some(Mutex::new((child, stdin))),
    }
}

fn find_postgres_bin() -> Option<PathBuf> {
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(dir) = on_path.into_iter().find(|d| has(d)) {
        return Some(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| has(d))
        .collect();
    versions.sort();
    versions.pop()
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn unprivileged_user() -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let exists = |name: &str| passwd.lines().any(|l| l.split(':').next() == Some(name));
    if exists("postgres") { "postgres".to_owned() } else { "nobody".to_owned() }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

fn wait_for_port(port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "the test Postgres did not start listening on port {port}:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(with_database("postgres://u@h:5/postgres", "t"), "postgres://u@h:5/t");
        assert_eq!(with_database("postgres://u@h:5", "t"), "postgres://u@h:5/t");
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t"),
            "postgres://u:p@h/t?sslmode=disable"
        );
    }
}
