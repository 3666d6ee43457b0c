//! The sandbox's shared state: its clock, when each customer last wrote, the conversations,
//! and the template registry. The store is the truth (so every replica emulates the same
//! network); a [`SandboxWorld`] is this replica's cache of it. The sandbox's own admin endpoints
//! write through it; [`SandboxWorld::keep_in_step`] reloads what other replicas changed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use premise_base::UnixMs;
use premise_store::Store;
use premise_wire::StatusError;
use premise_wire::messages::template::Template;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::conversation::Conversations;
use super::templates::{self, Registry, TemplateDef};
use super::window::{CustomerWindows, SandboxClock, WINDOW_MS};
use crate::Clock;

/// How often each replica reloads the sandbox's shared state from the store.
const REFRESH: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct SandboxWorld {
    pub clock: SandboxClock,
    pub windows: CustomerWindows,
    pub conversations: Conversations,
    templates: RwLock<Registry>,
    /// Counts changes made here, so a reload read before one of them does not undo it.
    changes: AtomicU64,
}

impl SandboxWorld {
    pub fn new(clock: Clock) -> Self {
        Self {
            clock: SandboxClock::new(clock),
            windows: CustomerWindows::default(),
            conversations: Conversations::default(),
            templates: RwLock::default(),
            changes: AtomicU64::new(0),
        }
    }

    /// The world as the store has it, after adding the `seed` templates the store lacks.
    pub async fn load(
        store: &dyn Store,
        seed: &[TemplateDef],
        clock: Clock,
    ) -> anyhow::Result<Arc<Self>> {
        for template in seed {
            let definition = serde_json::to_string(template)?;
            store
                .put_sandbox_template(&template.name, &template.language, &definition, false)
                .await?;
        }
        let world = Arc::new(Self::new(clock));
        world.reload(store).await?;
        Ok(world)
    }

    /// Reloads templates, clock and customer windows from the store, unless this replica
    /// changed something meanwhile (the next reload carries it).
    pub async fn reload(&self, store: &dyn Store) -> anyhow::Result<()> {
        let changes_before = self.changes.load(Ordering::SeqCst);
        let mut templates: Vec<TemplateDef> = Vec::new();
        for definition in store.sandbox_templates().await? {
            match serde_json::from_str(&definition) {
                Ok(template) => templates.push(template),
                Err(e) => tracing::warn!(error = %e, "skipping an unreadable sandbox template"),
            }
        }
        let offset = store.sandbox_clock_offset().await?;
        if self.changes.load(Ordering::SeqCst) == changes_before {
            self.set_templates(templates);
            self.clock.set_offset(offset);
        }
        let since = self.clock.now_ms() - WINDOW_MS;
        self.windows.merge(&store.customer_windows(UnixMs(since)).await?);
        Ok(())
    }

    /// Keeps this replica in step with the store, so what an admin did through another replica
    /// (a template, the clock, a customer's message) counts here within seconds; until `stop`.
    pub fn keep_in_step(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        clock: Clock,
        stop: CancellationToken,
    ) -> JoinHandle<()> {
        let world = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = clock.sleep(REFRESH) => {}
                    () = stop.cancelled() => return,
                }
                if let Err(e) = world.reload(store.as_ref()).await {
                    tracing::debug!(error = format!("{e:#}"), "cannot refresh the sandbox's state");
                }
            }
        })
    }

    /// Marks a change made through this replica (after it is in the store).
    pub fn changed(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    /// A customer message arrived from `wa_id` now (sandbox time): it opens their window.
    pub fn customer_wrote(&self, wa_id: &str) {
        self.windows.customer_wrote(wa_id, self.clock.now_ms());
    }

    /// Replaces the cached registry.
    pub fn set_templates(&self, templates: Vec<TemplateDef>) {
        let registry = templates.into_iter().map(|t| ((t.name.clone(), t.language.clone()), t));
        if let Ok(mut cached) = self.templates.write() {
            *cached = registry.collect();
        }
    }

    /// Whether the registry's template `name` in `language` is one of the sandbox's demos.
    pub fn is_demo(&self, name: &str, language: &str) -> bool {
        self.templates.read().is_ok_and(|registry| {
            registry.get(&(name.to_owned(), language.to_owned())).is_some_and(TemplateDef::is_demo)
        })
    }

    pub fn put_template(&self, template: TemplateDef) {
        self.changed();
        if let Ok(mut cached) = self.templates.write() {
            cached.insert((template.name.clone(), template.language.clone()), template);
        }
    }

    pub fn remove_template(&self, name: &str, language: &str) {
        self.changed();
        if let Ok(mut cached) = self.templates.write() {
            cached.remove(&(name.to_owned(), language.to_owned()));
        }
    }

    /// Checks a template message against the registry: its hydrated text, or its error; the
    /// namespace counts only with `check_namespace`.
    /// The category of template `name` (any language), `MARKETING` when unknown.
    pub fn template_category(&self, name: &str) -> String {
        let registry = self.templates.read();
        let found = registry.ok().and_then(|r| {
            r.iter().find(|((n, _), _)| n == name).map(|(_, def)| def.category.clone())
        });
        found.unwrap_or_else(|| "MARKETING".to_owned())
    }

    pub fn hydrate(
        &self,
        template: &Template,
        check_namespace: bool,
    ) -> Result<String, StatusError> {
        match self.templates.read() {
            Ok(registry) => templates::hydrate(&registry, template, check_namespace),
            Err(_) => Err(StatusError {
                code: 1000,
                title: "Generic error".to_owned(),
                details: Some("sandbox: the template registry is unavailable".to_owned()),
            }),
        }
    }
}
