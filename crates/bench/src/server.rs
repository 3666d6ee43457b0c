//! The Premise server under test: the real binary, started on a free port and stopped at the
//! end, its peak memory read from `/proc`; with several replicas, nginx in front of them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::balancer::Nginx;

/// The replicas of one run on one database, and the address integrations use: the one
/// server's own, or nginx's in front of several.
#[derive(Debug)]
pub struct Fleet {
    pub replicas: Vec<Server>,
    pub base: String,
    nginx: Option<Nginx>,
}

impl Fleet {
    /// Starts `replicas` servers one after the other (named `replica-1`, ...), each with `env`,
    /// and nginx in `dir` when there are several.
    pub async fn start(
        binary: &Path,
        database_url: &str,
        env: &[(&'static str, String)],
        replicas: u32,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let mut servers = Vec::new();
        for n in 1..=replicas.max(1) {
            let mut env = env.to_vec();
            if replicas > 1 {
                env.push(("PREMISE_NODE__NAME", format!("replica-{n}")));
                env.push(("PREMISE_SERVER__TRUST_FORWARDED_FOR", "true".to_owned()));
            }
            servers.push(Server::start(binary, database_url, &env)?);
        }
        if servers.len() == 1 {
            let base = servers[0].base.clone();
            return Ok(Self { replicas: servers, base, nginx: None });
        }
        let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
        let nginx = Nginx::start(&dir.join("nginx"), &bases).await?;
        Ok(Self { base: nginx.base.clone(), replicas: servers, nginx: Some(nginx) })
    }

    pub fn pids(&self) -> Vec<u32> {
        self.replicas.iter().map(Server::pid).collect()
    }

    /// nginx's master process, when it is in front.
    pub fn balancer_pid(&self) -> Option<u32> {
        self.nginx.as_ref().map(Nginx::pid)
    }

    /// What nginx logged, when it is in front.
    pub fn balancer_log(&self) -> Option<String> {
        self.nginx.as_ref().map(Nginx::error_log)
    }

    /// Stops nginx, then every replica.
    pub fn stop(self) {
        drop(self.nginx);
        for server in self.replicas {
            server.stop();
        }
    }
}

#[derive(Debug)]
pub struct Server {
    pub base: String,
    child: Child,
}

impl Server {
    /// Starts `binary serve` on a free loopback port with `env` on top of the defaults.
    pub fn start(
        binary: &Path,
        database_url: &str,
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", database_url])
            .env_remove("DATABASE_URL")
            .env_remove("PREMISE_CONFIG")
            .env_remove("RUST_LOG")
            .env("PREMISE_LOG__LEVEL", "warn,premise=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child =
            command.spawn().with_context(|| format!("starting {}", binary.display()))?;
        let (found, address) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("piped")),
        ] {
            let found = found.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let address: String = rest
                            .chars()
                            .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\x1b'))
                            .collect();
                        let _ = found.send(format!("http://{address}"));
                    } else if line.contains("ERROR") || line.contains("WARN") {
                        eprintln!("  server: {line}");
                    }
                }
            });
        }
        match address.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => Ok(Self { base, child }),
            Err(_) => {
                let _ = child.kill();
                bail!("the server did not report its address within 60 s")
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The most memory the server has held (`VmHWM`), in MB.
    pub fn peak_rss_mb(&self) -> f64 {
        memory_mb(self.pid(), "VmHWM:")
    }

    /// SIGTERM, then a kill if it has not exited within ten seconds.
    pub fn stop(mut self) {
        premise_testkit::stop_child(&mut self.child, Duration::from_secs(10));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A memory figure of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`), in MB; 0 when unknown.
pub fn memory_mb(pid: u32, field: &str) -> f64 {
    let kb = std::fs::read_to_string(format!("/proc/{pid}/status")).ok().and_then(|status| {
        let line = status.lines().find(|l| l.starts_with(field))?.to_owned();
        line.split_whitespace().nth(1)?.parse::<f64>().ok()
    });
    kb.map_or(0.0, |kb| kb / 1024.0)
}
