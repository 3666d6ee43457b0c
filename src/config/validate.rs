//! Checking every setting at start-up: a bad value stops Premise with a message naming it.

use std::net::SocketAddr;
use std::path::Path;

use super::{Config, ConfigError};

impl Config {
    /// Checks every section, and keeps what it parsed (the listening address).
    pub(super) fn validate(&mut self) -> Result<(), ConfigError> {
        self.server.listen_addr = Some(self.validate_server()?);
        self.validate_metrics()?;
        self.validate_database()?;
        self.validate_auth()?;
        self.validate_pipeline()?;
        self.validate_cloud()?;
        self.validate_sandbox()?;
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return bad(
                "log.level",
                "must be a level such as info or a filter such as info,premise=debug",
            );
        }
        Ok(())
    }

    /// `[server]`: the listening address (returned parsed), path prefix, TLS files, limits.
    fn validate_server(&self) -> Result<SocketAddr, ConfigError> {
        let Ok(listen) = self.server.listen.parse::<SocketAddr>() else {
            return bad("server.listen", "must be an address and port such as 0.0.0.0:8080");
        };
        let prefix = &self.server.path_prefix;
        if !prefix.is_empty()
            && (!prefix.starts_with('/')
                || prefix.ends_with('/')
                || prefix.contains("//")
                || prefix.contains(|c: char| c.is_whitespace() || "?#{}*".contains(c)))
        {
            return bad(
                "server.path_prefix",
                "must be empty or a path such as /whatsapp (leading /, no trailing /)",
            );
        }
        if self.server.tls_cert.is_empty() != self.server.tls_key.is_empty() {
            return bad("server.tls_cert", "server.tls_cert and server.tls_key go together");
        }
        for (setting, path) in
            [("server.tls_cert", &self.server.tls_cert), ("server.tls_key", &self.server.tls_key)]
        {
            if !path.is_empty() && !Path::new(path).is_file() {
                return bad(setting, &format!("{path} is not a readable file"));
            }
        }
        if self.server.drain_delay_ms > 600_000 {
            return bad("server.drain_delay_ms", "must be at most 600000 (10 minutes)");
        }
        if !(100..=600_000).contains(&self.server.header_read_timeout_ms) {
            return bad("server.header_read_timeout_ms", "must be between 100 and 600000");
        }
        if !(100..=3_600_000).contains(&self.server.idle_timeout_ms) {
            return bad("server.idle_timeout_ms", "must be between 100 and 3600000");
        }
        if !(1..=1_000_000).contains(&self.server.max_connections) {
            return bad("server.max_connections", "must be between 1 and 1000000");
        }
        if self.server.body_limit_bytes < 1024 {
            return bad("server.body_limit_bytes", "must be at least 1024");
        }
        if !(1..=30 * 24 * 3600).contains(&self.server.idempotency_ttl_secs) {
            return bad("server.idempotency_ttl_secs", "must be between 1 and 2592000 (30 days)");
        }
        Ok(listen)
    }

    fn validate_metrics(&self) -> Result<(), ConfigError> {
        if !self.metrics.listen.is_empty() && self.metrics.listen.parse::<SocketAddr>().is_err() {
            return bad(
                "metrics.listen",
                "must be empty or an address and port such as 0.0.0.0:9090",
            );
        }
        if self.metrics.queue_refresh_ms < 100 {
            return bad("metrics.queue_refresh_ms", "must be at least 100");
        }
        Ok(())
    }

    fn validate_database(&self) -> Result<(), ConfigError> {
        let url = self.database.url.expose();
        if !["sqlite:", "postgres://", "postgresql://"].iter().any(|p| url.starts_with(p)) {
            return bad("database.url", "must start with sqlite:// or postgres://");
        }
        if self.database.max_connections == 0 {
            return bad("database.max_connections", "must be at least 1");
        }
        if self.database.acquire_timeout_secs == 0 {
            return bad("database.acquire_timeout_secs", "must be at least 1");
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let secret = self.auth.token_secret.expose();
        if !secret.is_empty() && secret.len() < 32 {
            return bad("auth.token_secret", "must be empty (generated) or at least 32 bytes");
        }
        if self.auth.token_lifetime_secs == 0 {
            return bad("auth.token_lifetime_secs", "must be at least 1");
        }
        let key_len = self.auth.api_key.expose().chars().count();
        if key_len != 0 && !(12..=128).contains(&key_len) {
            return bad("auth.api_key", "must be empty (disabled) or 12 to 128 characters");
        }
        if self.auth.max_failed_logins == 0 {
            return bad("auth.max_failed_logins", "must be at least 1");
        }
        if self.auth.failed_login_window_secs == 0 {
            return bad("auth.failed_login_window_secs", "must be at least 1");
        }
        if self.auth.password_checks > 1024 {
            return bad("auth.password_checks", "must be at most 1024 (0: one per core)");
        }
        if !(1..=60_000).contains(&self.auth.password_check_wait_ms) {
            return bad("auth.password_check_wait_ms", "must be between 1 and 60000");
        }
        Ok(())
    }

    /// `[queue]`, `[sender]`, `[callbacks]`, `[retention]`: counts and intervals.
    fn validate_pipeline(&self) -> Result<(), ConfigError> {
        if !(1..=10_000).contains(&self.retention.batch) {
            return bad("retention.batch", "must be between 1 and 10000");
        }
        if self.retention.interval_ms < 100 {
            return bad("retention.interval_ms", "must be at least 100");
        }
        for (setting, value) in [
            ("queue.accept_queue", self.queue.accept_queue),
            ("queue.max_batch", self.queue.max_batch),
            ("queue.committers", self.queue.committers),
            ("sender.shard_window", self.sender.shard_window),
            ("sender.shard_buffer", self.sender.shard_buffer),
            ("callbacks.max_statuses_per_request", self.callbacks.max_statuses_per_request),
        ] {
            if value == 0 {
                return bad(setting, "must be at least 1");
            }
        }
        for (setting, value) in [
            ("sender.poll_interval_ms", self.sender.poll_interval_ms),
            ("sender.lease_renew_ms", self.sender.lease_renew_ms),
            ("sender.retry_initial_ms", self.sender.retry_initial_ms),
            ("sender.send_timeout_ms", self.sender.send_timeout_ms),
            ("callbacks.timeout_ms", self.callbacks.timeout_ms),
        ] {
            if value == 0 {
                return bad(setting, "must be at least 1");
            }
        }
        if self.sender.lease_ttl_ms < 2 * self.sender.lease_renew_ms {
            return bad("sender.lease_ttl_ms", "must be at least twice sender.lease_renew_ms");
        }
        if self.sender.retry_max_ms < self.sender.retry_initial_ms {
            return bad("sender.retry_max_ms", "must be at least sender.retry_initial_ms");
        }
        Ok(())
    }

    fn validate_sandbox(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.sandbox.transient_failure_rate) {
            return bad("sandbox.transient_failure_rate", "must be between 0 and 1");
        }
        if !(0.0..=1.0).contains(&self.sandbox.permanent_failure_rate) {
            return bad("sandbox.permanent_failure_rate", "must be between 0 and 1");
        }
        if let Err(why) = self.sandbox_templates() {
            return bad("sandbox.templates", &why.to_string());
        }
        Ok(())
    }
}

/// The error for `setting`, saying why.
fn bad<T>(setting: &str, why: &str) -> Result<T, ConfigError> {
    Err(ConfigError(format!("{setting}: {why}")))
}

impl Config {
    /// `[cloud]`: always well-formed; with `upstream.kind = "cloud"`, complete.
    fn validate_cloud(&self) -> Result<(), ConfigError> {
        let cloud = &self.cloud;
        let base = &cloud.base_url;
        if !(base.starts_with("https://") || base.starts_with("http://"))
            || base.contains(|c: char| c.is_whitespace() || "?#".contains(c))
        {
            return bad(
                "cloud.base_url",
                "must be an http(s) URL such as https://graph.facebook.com",
            );
        }
        // The access token travels to it: in clear only to this machine (a test's fake).
        if let Some(rest) = base.strip_prefix("http://") {
            let host = rest.split(['/', ':']).next().unwrap_or_default();
            let host = if rest.starts_with('[') { "[::1]" } else { host };
            if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") && !host.starts_with("127.") {
                return bad(
                    "cloud.base_url",
                    "must be https (the access token travels to it); http only to this machine",
                );
            }
        }
        let version = cloud.api_version.strip_prefix('v').unwrap_or_default();
        if version.split('.').count() != 2
            || !version.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return bad("cloud.api_version", "must be a Graph API version such as v23.0");
        }
        if !(1..=1_000).contains(&cloud.max_per_second) {
            return bad("cloud.max_per_second", "must be between 1 and 1000");
        }
        if !(100..=600_000).contains(&cloud.timeout_ms) {
            return bad("cloud.timeout_ms", "must be between 100 and 600000");
        }
        if let Err(why) =
            premise_upstream::cloud::fetch_guard::FetchAllow::parse(&cloud.link_fetch_allow)
        {
            return bad("cloud.link_fetch_allow", &why.to_string());
        }
        let id = &cloud.phone_number_id;
        if !id.is_empty() && !id.bytes().all(|b| b.is_ascii_digit()) {
            return bad("cloud.phone_number_id", "must be the phone number's id, digits only");
        }
        if self.upstream.kind == super::UpstreamKind::Cloud {
            let required = [
                ("cloud.phone_number_id", id.is_empty()),
                ("cloud.access_token", cloud.access_token.expose().is_empty()),
                ("cloud.app_secret", cloud.app_secret.expose().is_empty()),
            ];
            if let Some((setting, _)) = required.iter().find(|(_, missing)| *missing) {
                return bad(setting, "is required with upstream.kind = \"cloud\"");
            }
            if cloud.timeout_ms + 1_000 >= self.sender.send_timeout_ms {
                return bad(
                    "cloud.timeout_ms",
                    "must be at least a second shorter than sender.send_timeout_ms (a Cloud call cut \
                     by the send timeout might have been taken, and would be sent twice)",
                );
            }
        }
        Ok(())
    }
}
