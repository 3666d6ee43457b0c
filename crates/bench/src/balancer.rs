//! nginx in front of the replicas, configured by the project's own `deploy/nginx.conf` (the
//! compose file's shape): only what ties it to the compose network is rewritten (the replicas'
//! addresses, the port, where it keeps its pid, log and temporary files).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The configuration the compose file mounts into its nginx container.
const DEPLOYED: &str = include_str!("../../../deploy/nginx.conf");

/// nginx running in the foreground; stopped when dropped.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    pub base: String,
    dir: PathBuf,
}

impl Nginx {
    /// Starts nginx in `dir` with `deploy/nginx.conf` balancing over `replicas` (each
    /// `http://host:port`), and waits until it answers.
    pub async fn start(dir: &Path, replicas: &[String]) -> anyhow::Result<Self> {
        let binary = binary()?;
        std::fs::create_dir_all(dir.join("tmp"))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let built = Command::new(&binary).arg("-V").output()?;
        let config =
            configure(DEPLOYED, dir, port, replicas, &String::from_utf8_lossy(&built.stderr))?;
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config)?;
        let child = Command::new(&binary)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let nginx = Self { child, base: format!("http://127.0.0.1:{port}"), dir: dir.to_owned() };
        let http = reqwest::Client::new();
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let health = http.get(format!("{}/nginx-health", nginx.base)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Ok(nginx);
            }
            if Instant::now() > until {
                bail!("nginx did not answer within 10 s: {}", nginx.error_log());
            }
            // Waiting for another process to come up.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    /// SIGTERM, so the master stops its workers too (a killed master leaves them running, still
    /// listening), then a kill if it has not exited within five seconds.
    fn drop(&mut self) {
        premise_testkit::stop_child(&mut self.child, Duration::from_secs(5));
    }
}

fn binary() -> anyhow::Result<PathBuf> {
    let candidates = [std::env::var("NGINX").ok(), Some("/usr/sbin/nginx".into())];
    if let Some(found) = candidates.into_iter().flatten().map(PathBuf::from).find(|p| p.is_file()) {
        return Ok(found);
    }
    if Command::new("nginx").arg("-v").output().is_ok_and(|o| o.status.success()) {
        return Ok("nginx".into());
    }
    bail!(
        "nginx is not installed: the replicas scenarios run behind it. Install it with \
         `apt-get install -y nginx-light`, or set NGINX=/path/to/nginx"
    )
}

/// `deployed` with the compose network's names replaced: the replicas' lines by `replicas`,
/// the port by a loopback one, the pid and log under `dir`, and every temporary path nginx
/// was built with under `dir` (`built`: its `-V` output), so it needs no root.
fn configure(
    deployed: &str,
    dir: &Path,
    port: u16,
    replicas: &[String],
    built: &str,
) -> anyhow::Result<String> {
    let dir = dir.display();
    let mut out = String::from("daemon off;\n");
    let mut seen = [false; 5];
    for line in deployed.lines() {
        let trimmed = line.trim();
        let indent = &line[..line.len() - line.trim_start().len()];
        if trimmed.starts_with("server premise-") {
            if !seen[0] {
                let options = trimmed.split_once(' ').map_or("", |(_, rest)| rest);
                let options = options.split_once(' ').map_or(";", |(_, rest)| rest);
                for replica in replicas {
                    let address = replica.trim_start_matches("http://");
                    out.push_str(&format!("{indent}server {address} {options}\n"));
                }
            }
            seen[0] = true;
        } else if trimmed.starts_with("listen ") {
            out.push_str(&format!("{indent}listen 127.0.0.1:{port};\n"));
            seen[1] = true;
        } else if trimmed.starts_with("pid ") {
            out.push_str(&format!("pid {dir}/nginx.pid;\n"));
            seen[2] = true;
        } else if trimmed.starts_with("error_log ") {
            out.push_str(&format!("error_log {dir}/error.log warn;\n"));
            seen[3] = true;
        } else if trimmed == "http {" {
            out.push_str(line);
            out.push('\n');
            out.push_str(&format!("    client_body_temp_path {dir}/tmp/body;\n"));
            for (module, directive) in [
                ("http_proxy", "proxy_temp_path"),
                ("http_fastcgi", "fastcgi_temp_path"),
                ("http_uwsgi", "uwsgi_temp_path"),
                ("http_scgi", "scgi_temp_path"),
            ] {
                if !built.contains(&format!("--without-{module}_module")) {
                    out.push_str(&format!("    {directive} {dir}/tmp/{module};\n"));
                }
            }
            seen[4] = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if seen.contains(&false) {
        bail!(
            "deploy/nginx.conf changed shape: expected `server premise-…`, `listen`, `pid`, \
             `error_log` and `http {{` lines"
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deployed_configuration_is_kept_but_for_the_compose_network() {
        let replicas = ["http://127.0.0.1:4001".to_owned(), "http://127.0.0.1:4002".to_owned()];
        let config =
            configure(DEPLOYED, Path::new("/run/x"), 9000, &replicas, "--without-http_scgi_module")
                .unwrap();
        assert!(config.starts_with("daemon off;\n"));
        assert!(config.contains("        server 127.0.0.1:4001 max_fails=1 fail_timeout=5s;\n"));
        assert!(config.contains("        server 127.0.0.1:4002 max_fails=1 fail_timeout=5s;\n"));
        assert!(!config.contains("premise-"), "{config}");
        assert!(config.contains("listen 127.0.0.1:9000;"));
        assert!(config.contains("pid /run/x/nginx.pid;"));
        assert!(config.contains("proxy_temp_path /run/x/tmp/http_proxy;"));
        assert!(!config.contains("scgi_temp_path"));
        // What the deployment chose stays: balancing, keepalive, retries, timeouts.
        for kept in [
            "least_conn;",
            "keepalive 64;",
            "proxy_next_upstream error timeout http_502 http_503;",
            "proxy_read_timeout 60s;",
            "worker_processes auto;",
        ] {
            assert!(config.contains(kept), "{kept} lost");
        }
    }
}
