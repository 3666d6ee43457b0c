//! Test support shared by the store's conformance suite and the black-box server tests.
//!
//! Postgres tests run against a real server. When `DATABASE_URL` is set it is used (this user
//! must be allowed to `CREATE DATABASE`); otherwise one throwaway cluster per test process is
//! started from the local `initdb`/`postgres` binaries in a temporary directory, as an
//! unprivileged user when running as root (Postgres refuses root). Every test gets a database
//! of its own. The cluster is watched by a small shell that holds the read end of a pipe whose
//! write end lives in this process: when the process ends, however it ends, the pipe closes and
//! the shell stops Postgres and removes the directory. Without binaries and without
//! `DATABASE_URL` the tests fail with instructions; they never skip.

pub mod cloud;
mod postgres;

pub use postgres::{Cluster, ClusterOptions, fresh_postgres_url};

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Stops a child process: SIGTERM (a server drains, an nginx master stops its workers, which a
/// kill of the master leaves running), then a kill if it has not exited within `within`.
pub fn stop_child(child: &mut Child, within: Duration) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        // Waiting for another process to exit.
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A fresh, empty temporary directory, removed when the value is dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{label}-{}", unique_suffix()));
        std::fs::create_dir_all(&path).expect("create temporary directory");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A `sqlite://` URL for a database file inside this directory.
    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}", self.0.join("premise.db").display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `<pid>-<counter>-<nanos>`: unique across the tests of a process and across processes.
pub fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{}-{nanos}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The On-Premises contract's example requests (`crates/wire/tests/fixtures/*.json`), by file
/// name without `.json`, in name order.
pub fn contract_fixtures() -> Vec<(String, serde_json::Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wire/tests/fixtures");
    let mut all: Vec<(String, serde_json::Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_stem().expect("a file name").to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).expect("a readable fixture");
            (name, serde_json::from_str(&text).expect("a fixture is JSON"))
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}
