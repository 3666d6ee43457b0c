//! Which upstream messages go to, built from the settings (`upstream.kind`).

use std::sync::Arc;

use anyhow::Context;
use premise_base::Clock;
use premise_engine::UpstreamFactory;
use premise_store::Store;
use premise_upstream::Upstream;
use premise_upstream::cloud::{Cloud, CloudClient};
use premise_upstream::sandbox::{Sandbox, SandboxWorld};

use crate::config::{Config, UpstreamKind};

/// The configured upstream, ready to start with the engine; the sandbox's world when the
/// upstream is the sandbox (its admin endpoints act on it), the Cloud API client when it is
/// Cloud (its webhook intake downloads media with it).
pub struct Prepared {
    pub factory: UpstreamFactory,
    pub sandbox: Option<Arc<SandboxWorld>>,
    pub cloud: Option<Arc<CloudClient>>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("sandbox", &self.sandbox.is_some())
            .field("cloud", &self.cloud)
            .finish_non_exhaustive()
    }
}

/// Loads what the configured upstream needs from the store.
pub async fn prepare(
    config: &Config,
    store: &Arc<dyn Store>,
    node: &str,
    clock: &Clock,
) -> anyhow::Result<Prepared> {
    match config.upstream.kind {
        UpstreamKind::Sandbox => {
            let seed = config
                .sandbox_templates()
                .map_err(|why| anyhow::anyhow!("sandbox.templates: {why}"))?;
            let world = SandboxWorld::load(store.as_ref(), &seed, clock.clone())
                .await
                .context("cannot load the sandbox's state")?;
            let settings = config.sandbox(node.to_owned());
            let (world_for_sandbox, store) = (world.clone(), store.clone());
            let factory: UpstreamFactory = Box::new(move |context| {
                let sandbox = Sandbox::start(settings, world_for_sandbox, store, context)
                    .context("cannot start the sandbox")?;
                Ok(Arc::new(sandbox) as Arc<dyn Upstream>)
            });
            Ok(Prepared { factory, sandbox: Some(world), cloud: None })
        }
        UpstreamKind::Cloud => {
            if config.cloud.display_phone_number.is_empty() {
                tracing::warn!(
                    "cloud.display_phone_number is not set: webhooks in the Cloud API's form carry \
                     an empty metadata.display_phone_number until it is (WhatsApp Manager > API Setup)"
                );
            }
            let client = Arc::new(
                CloudClient::new(config.cloud()).context("cannot set up the Cloud API client")?,
            );
            let (for_upstream, store) = (client.clone(), store.clone());
            let factory: UpstreamFactory = Box::new(move |context| {
                Ok(Arc::new(Cloud::start(for_upstream, store, &context)) as Arc<dyn Upstream>)
            });
            Ok(Prepared { factory, sandbox: None, cloud: Some(client) })
        }
    }
}
