//! Configuration: `config/default.toml` (compiled in), then an optional file, then
//! `PREMISE_`-prefixed environment variables, then command-line flags. Validated once at
//! start-up into [`Config`]; a bad value fails fast with a message naming the setting.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use premise_base::Secret;

mod convert;
mod validate;

pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");
pub const DEFAULT_TEMPLATES: &str = include_str!("../../config/templates.json");

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
    pub upstream: UpstreamSettings,
    pub cloud: CloudConfig,
    pub sandbox: SandboxSettings,
    pub retention: RetentionSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSettings {
    pub kind: UpstreamKind,
}

/// Where messages are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamKind {
    /// The built-in emulated WhatsApp network.
    Sandbox,
    /// Meta's WhatsApp Cloud API.
    Cloud,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudConfig {
    pub base_url: String,
    pub api_version: String,
    #[serde(deserialize_with = "premise_base::text_or_number")]
    pub phone_number_id: String,
    #[serde(deserialize_with = "premise_base::text_or_number")]
    pub business_account_id: String,
    #[serde(deserialize_with = "premise_base::text_or_number")]
    pub display_phone_number: String,
    pub access_token: Secret,
    pub app_secret: Secret,
    pub verify_token: Secret,
    pub max_per_second: u32,
    pub timeout_ms: u64,
    pub link_fetch_allow: String,
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

/// `[retention]`: how long what is finished is kept, in seconds; 0 keeps it forever.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    pub messages_secs: u64,
    pub inbound_secs: u64,
    pub media_secs: u64,
    pub interval_ms: u64,
    pub batch: u32,
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
    pub pricing_model: premise_upstream::sandbox::PricingModel,
    pub templates: String,
    pub check_templates: premise_upstream::sandbox::TemplateCheck,
    pub pacing: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    /// `listen`, parsed once when the configuration is validated.
    #[serde(skip)]
    pub listen_addr: Option<std::net::SocketAddr>,
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
    pub commit_timeout_ms: u64,
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
        let mut config: Self = figment.extract().map_err(|e| ConfigError(flatten(e)))?;
        config.validate()?;
        Ok(config)
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
        let mut config: Config = Figment::from(Toml::string(DEFAULT_TOML)).extract().unwrap();
        config.validate().unwrap();
        assert_eq!(config.database.url.expose(), "sqlite://data/premise.db");
        assert_eq!(config.auth.token_lifetime_secs, 7 * 24 * 3600);
        assert_eq!(config.server.idempotency_ttl_secs, 24 * 3600);
    }

    #[test]
    fn idempotency_ttl_is_checked() {
        for bad in [0, 30 * 24 * 3600 + 1] {
            let mut config: Config = Figment::from(Toml::string(DEFAULT_TOML))
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
