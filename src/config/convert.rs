//! The settings as the other crates take them: the engine's, the sandbox's, the store's, the
//! listener's and the password hasher's configurations.

use std::net::SocketAddr;
use std::time::Duration;

use premise_upstream::sandbox::templates::{self, TemplateDef};

use super::{Config, DEFAULT_TEMPLATES};

/// Why the sandbox's templates (`sandbox.templates`) cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum TemplatesError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error(transparent)]
    Refused(#[from] templates::FileError),
}

/// The sandbox's business number as Cloud-form webhooks name it when `[cloud]` sets none:
/// fictional ids in Meta's shape (digits), and a number in the 555 range kept for fiction.
pub const SANDBOX_PHONE_NUMBER_ID: &str = "100000000000001";
pub const SANDBOX_DISPLAY_PHONE_NUMBER: &str = "15550000000";

impl Config {
    /// The templates that seed the sandbox's registry: from `sandbox.templates`, or the
    /// built-in `config/templates.json` when that is empty.
    pub fn sandbox_templates(&self) -> Result<Vec<TemplateDef>, TemplatesError> {
        let text = match self.sandbox.templates.as_str() {
            "" => DEFAULT_TEMPLATES.to_owned(),
            path => std::fs::read_to_string(path)
                .map_err(|error| TemplatesError::Read { path: path.to_owned(), error })?,
        };
        Ok(templates::parse_file(&text)?)
    }

    /// Where the API listens, as validated at load (a configuration built otherwise, as tests
    /// do, has it parsed here).
    pub fn listen_addr(&self) -> Result<SocketAddr, std::net::AddrParseError> {
        self.server.listen_addr.map_or_else(|| self.server.listen.parse(), Ok)
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
            commit_timeout: Duration::from_millis(self.database.commit_timeout_ms),
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
            cloud_identity: self.cloud_identity(),
            cloud_app_secret: self.cloud.app_secret.clone(),
            retention: self.retention(),
        }
    }

    /// What is deleted when: `[retention]` (0: forever) and the lifetimes of what expires.
    pub fn retention(&self) -> premise_engine::RetentionConfig {
        let kept = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
        let retention = &self.retention;
        premise_engine::RetentionConfig {
            messages: kept(retention.messages_secs),
            inbound: kept(retention.inbound_secs),
            media: kept(retention.media_secs),
            contact_checks: Duration::from_secs(
                premise_wire::contacts::CHECK_CACHE_SECS.unsigned_abs(),
            ),
            login_window: Duration::from_secs(self.auth.failed_login_window_secs),
            interval: Duration::from_millis(retention.interval_ms),
            batch: retention.batch,
        }
    }

    /// Who Cloud-form webhooks are about: `[cloud]`'s ids. Unset, the business account id is
    /// the phone number id; with the sandbox, the sandbox's own number
    /// ([`SANDBOX_PHONE_NUMBER_ID`], [`SANDBOX_DISPLAY_PHONE_NUMBER`]); with the Cloud API the
    /// display number must be configured (`cloud.display_phone_number`, warned at start).
    pub fn cloud_identity(&self) -> premise_wire::cloud_webhooks::CloudIdentity {
        let cloud = &self.cloud;
        let sandbox = self.upstream.kind == super::UpstreamKind::Sandbox;
        let or = |value: &str, default: &str| {
            if value.is_empty() { default.to_owned() } else { value.to_owned() }
        };
        let phone_number_id =
            or(&cloud.phone_number_id, if sandbox { SANDBOX_PHONE_NUMBER_ID } else { "" });
        let display = if sandbox { SANDBOX_DISPLAY_PHONE_NUMBER } else { "" };
        premise_wire::cloud_webhooks::CloudIdentity {
            business_account_id: or(&cloud.business_account_id, &phone_number_id),
            display_phone_number: or(&cloud.display_phone_number, display),
            phone_number_id,
        }
    }

    /// The Cloud bridge's settings.
    pub fn cloud(&self) -> premise_upstream::cloud::CloudSettings {
        let cloud = &self.cloud;
        premise_upstream::cloud::CloudSettings {
            base_url: cloud.base_url.trim_end_matches('/').to_owned(),
            api_version: cloud.api_version.clone(),
            phone_number_id: cloud.phone_number_id.clone(),
            access_token: cloud.access_token.clone(),
            app_secret: cloud.app_secret.clone(),
            verify_token: cloud.verify_token.clone(),
            max_per_second: cloud.max_per_second,
            timeout: Duration::from_millis(cloud.timeout_ms),
            // What the engine's send timeout leaves after the call's own, less a second.
            max_pacing_wait: Duration::from_millis(
                self.sender.send_timeout_ms.saturating_sub(cloud.timeout_ms + 1_000),
            ),
            check_interval: Duration::from_secs(60),
            // Validated at start-up (`validate.rs`).
            link_fetch_allow: premise_upstream::cloud::fetch_guard::FetchAllow::parse(
                &cloud.link_fetch_allow,
            )
            .unwrap_or_default(),
        }
    }

    pub fn sandbox(&self, node: String) -> premise_upstream::sandbox::SandboxConfig {
        let ms = Duration::from_millis;
        premise_upstream::sandbox::SandboxConfig {
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
            pricing_model: self.sandbox.pricing_model,
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
