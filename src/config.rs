//! Configuration: `config/default.toml` (compiled in), then an optional file, then
//! `PREMISE_`-prefixed environment variables, then command-line flags. Validated once at
//! start-up into [`Config`]; a bad value fails fast with a message naming the setting.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");
pub const DEFAULT_TEMPLATES: &str = include_str!("../config/templates.json");

/// Environment variables with short names of their own, and the setting each one sets.
const ENV_ALIASES: [(&str, &str); 3] = [
    ("PREMISE_LISTEN", "server.listen"),
    ("PREMISE_API_KEY", "auth.api_key"),
    ("DATABASE_URL", "database.url"),
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub metrics: MetricsConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub node: NodeConfig,
    pub queue: QueueConfig,
    pub sender: SenderConfig,
    pub callbacks: CallbacksConfig,
    pub sandbox: SandboxSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    pub accept_queue: usize,
    pub max_batch: usize,
    pub committers: usize,
    pub max_queued: u64,
    pub max_callback_backlog: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderConfig {
    pub shard_window: usize,
    pub shard_buffer: usize,
    pub poll_interval_ms: u64,
    pub read_gap_ms: u64,
    pub lease_ttl_ms: u64,
    pub lease_renew_ms: u64,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    pub send_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbacksConfig {
    pub timeout_ms: u64,
    pub max_statuses_per_request: usize,
    pub read_gap_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSettings {
    pub ack_latency_ms: u64,
    pub delivered_after_ms: u64,
    pub read_after_ms: u64,
    pub lifecycle: bool,
    pub transient_failure_rate: f64,
    pub permanent_failure_rate: f64,
    pub journal: String,
    pub seed: u64,
    pub customer_service_window: bool,
    pub templates: String,
    pub check_templates: bool,
    pub pacing: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub body_limit_bytes: usize,
    pub drain_delay_ms: u64,
    pub shutdown_timeout_secs: u64,
    pub trust_forwarded_for: bool,
    pub idempotency_ttl_secs: u64,
    pub path_prefix: String,
    pub tls_cert: String,
    pub tls_key: String,
    pub header_read_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub max_connections: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    pub listen: String,
    pub queue_refresh_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: Secret,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub token_secret: Secret,
    pub token_lifetime_secs: u64,
    pub api_key: Secret,
    pub max_failed_logins: u32,
    pub failed_login_window_secs: u64,
    pub password_checks: usize,
    pub password_check_wait_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A value that must never reach a log line. Numbers are accepted too, because an environment
/// variable of digits arrives as one.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "SecretRepr")]
pub struct Secret(String);

#[derive(Deserialize)]
#[serde(untagged)]
enum SecretRepr {
    Text(String),
    Int(i128),
}

impl From<SecretRepr> for Secret {
    fn from(raw: SecretRepr) -> Self {
        match raw {
            SecretRepr::Text(s) => Self(s),
            SecretRepr::Int(n) => Self(n.to_string()),
        }
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "[redacted]" })
    }
}

/// Values given on the command line; they override everything else.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    pub listen: Option<String>,
    pub database_url: Option<String>,
}

/// A setting that was missing, of the wrong type or out of range.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads and validates the configuration from every source.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!("config file {} does not exist", path.display())));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(
            Env::prefixed("PREMISE_")
                .split("__")
                // The short names are read below; CONFIG is the `--config` flag's;
                // HEALTHCHECK_URL is the container image's HEALTHCHECK's, not Premise's.
                .ignore(&["listen", "api_key", "config", "healthcheck_url"]),
        );
        for (var, setting) in ENV_ALIASES {
            if let Ok(value) = std::env::var(var) {
                figment = figment.merge(Serialized::default(setting, value));
            }
        }
        if let Some(listen) = &overrides.listen {
            figment = figment.merge(Serialized::default("server.listen", listen));
        }
        if let Some(url) = &overrides.database_url {
            figment = figment.merge(Serialized::default("database.url", url));
        }
        let config: Self = figment.extract().map_err(|e| ConfigError(flatten(e)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |setting: &str, why: &str| Err(ConfigError(format!("{setting}: {why}")));
        if self.server.listen.parse::<SocketAddr>().is_err() {
            return bad("server.listen", "must be an address and port such as 0.0.0.0:8080");
        }
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
        if !self.metrics.listen.is_empty() && self.metrics.listen.parse::<SocketAddr>().is_err() {
            return bad(
                "metrics.listen",
                "must be empty or an address and port such as 0.0.0.0:9090",
            );
        }
        if self.metrics.queue_refresh_ms < 100 {
            return bad("metrics.queue_refresh_ms", "must be at least 100");
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
        if !(0.0..=1.0).contains(&self.sandbox.transient_failure_rate) {
            return bad("sandbox.transient_failure_rate", "must be between 0 and 1");
        }
        if !(0.0..=1.0).contains(&self.sandbox.permanent_failure_rate) {
            return bad("sandbox.permanent_failure_rate", "must be between 0 and 1");
        }
        if let Err(why) = self.sandbox_templates() {
            return bad("sandbox.templates", &why);
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return bad(
                "log.level",
                "must be a level such as info or a filter such as info,premise=debug",
            );
        }
        Ok(())
    }

    /// The templates that seed the sandbox's registry: from `sandbox.templates`, or the
    /// built-in `config/templates.json` when that is empty.
    pub fn sandbox_templates(
        &self,
    ) -> Result<Vec<premise_upstream::templates::TemplateDef>, String> {
        let text = match self.sandbox.templates.as_str() {
            "" => DEFAULT_TEMPLATES.to_owned(),
            path => {
                std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?
            }
        };
        premise_upstream::templates::parse_file(&text)
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.server.listen.parse().expect("validated at load")
    }

    pub fn connection_limits(&self) -> crate::connection::Limits {
        crate::connection::Limits {
            header_read_timeout: Duration::from_millis(self.server.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(self.server.idle_timeout_ms),
            max_connections: self.server.max_connections,
        }
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.server.shutdown_timeout_secs)
    }

    pub fn engine(&self, node: String) -> premise_engine::EngineConfig {
        let ms = Duration::from_millis;
        premise_engine::EngineConfig {
            node,
            accept_queue: self.queue.accept_queue,
            max_batch: self.queue.max_batch,
            committers: self.queue.committers,
            max_queued: self.queue.max_queued,
            max_callback_backlog: self.queue.max_callback_backlog,
            backlog_refresh: ms(500),
            queue_stats_refresh: ms(self.metrics.queue_refresh_ms),
            shard_window: self.sender.shard_window,
            shard_buffer: self.sender.shard_buffer,
            poll_interval: ms(self.sender.poll_interval_ms),
            read_gap: ms(self.sender.read_gap_ms),
            lease_ttl: ms(self.sender.lease_ttl_ms),
            lease_renew: ms(self.sender.lease_renew_ms),
            retry_initial: ms(self.sender.retry_initial_ms),
            retry_max: ms(self.sender.retry_max_ms),
            send_timeout: ms(self.sender.send_timeout_ms),
            webhook_timeout: ms(self.callbacks.timeout_ms),
            webhook_batch: self.callbacks.max_statuses_per_request,
            callback_read_gap: ms(self.callbacks.read_gap_ms),
        }
    }

    pub fn sandbox(&self, node: String) -> premise_upstream::SandboxConfig {
        let ms = Duration::from_millis;
        premise_upstream::SandboxConfig {
            ack_latency: ms(self.sandbox.ack_latency_ms),
            delivered_after: ms(self.sandbox.delivered_after_ms),
            read_after: ms(self.sandbox.read_after_ms),
            lifecycle: self.sandbox.lifecycle,
            transient_failure_rate: self.sandbox.transient_failure_rate,
            permanent_failure_rate: self.sandbox.permanent_failure_rate,
            journal: (!self.sandbox.journal.is_empty())
                .then(|| self.sandbox.journal.clone().into()),
            seed: (self.sandbox.seed != 0).then_some(self.sandbox.seed),
            customer_service_window: self.sandbox.customer_service_window,
            pacing: self.sandbox.pacing,
            check_templates: self.sandbox.check_templates,
            node,
        }
    }

    /// Password hashing, bounded as `auth.password_checks` and `auth.password_check_wait_ms` say.
    pub fn password_hasher(&self) -> crate::auth::PasswordHasher {
        crate::auth::PasswordHasher::new(
            self.auth.password_checks,
            Duration::from_millis(self.auth.password_check_wait_ms),
        )
    }

    pub fn store_options(&self) -> premise_store::ConnectOptions {
        premise_store::ConnectOptions {
            max_connections: self.database.max_connections,
            acquire_timeout: Duration::from_secs(self.database.acquire_timeout_secs),
        }
    }
}

/// One clause per problem, each starting with the setting's path as `default.toml` spells it
/// and ending with where the value came from.
fn flatten(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let setting = e.path.join(".").to_ascii_lowercase();
            let source =
                e.metadata.as_ref().map(|m| format!(" (from {})", m.name)).unwrap_or_default();
            if setting.is_empty() {
                format!("{}{source}", e.kind)
            } else {
                format!("{setting}: {}{source}", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The database URL with any password replaced, fit for a log line.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end], &rest[at..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_validate() {
        let config: Config = Figment::from(Toml::string(DEFAULT_TOML)).extract().unwrap();
        config.validate().unwrap();
        assert_eq!(config.database.url.expose(), "sqlite://data/premise.db");
        assert_eq!(config.auth.token_lifetime_secs, 7 * 24 * 3600);
        assert_eq!(config.server.idempotency_ttl_secs, 24 * 3600);
    }

    #[test]
    fn idempotency_ttl_is_checked() {
        for bad in [0, 30 * 24 * 3600 + 1] {
            let config: Config = Figment::from(Toml::string(DEFAULT_TOML))
                .merge(Serialized::default("server.idempotency_ttl_secs", bad))
                .extract()
                .unwrap();
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains("server.idempotency_ttl_secs"), "{error}");
        }
    }

    #[test]
    fn secrets_are_redacted() {
        let config: Config = Figment::from(Toml::string(DEFAULT_TOML))
            .merge(Serialized::default("auth.api_key", "supersecretkey"))
            .extract()
            .unwrap();
        assert!(!format!("{config:?}").contains("supersecretkey"));
        assert_eq!(redact_url("postgres://u:pw@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("sqlite://data/premise.db"), "sqlite://data/premise.db");
    }
}
