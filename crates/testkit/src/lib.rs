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
use std::sync::atomic::{AtomicU32, Ordering};

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
