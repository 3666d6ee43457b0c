//! The application settings as the pipeline reads them: cached, refreshed from the store every
//! second so a PATCH on any replica reaches all of them quickly, and replaced at once on the
//! replica that made the change.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use premise_base::Clock;
use premise_store::Store;
use premise_wire::AppSettings;
use serde_json::Value;

const MAX_AGE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct SettingsCache {
    store: Arc<dyn Store>,
    /// The document, its typed view, and when it was read (Unix ms).
    cached: Arc<RwLock<Option<(i64, Value, AppSettings)>>>,
    clock: Clock,
}

impl SettingsCache {
    pub fn new(store: Arc<dyn Store>, clock: Clock) -> Self {
        Self { store, cached: Arc::new(RwLock::new(None)), clock }
    }

    /// The stored document and its typed view, at most a second old.
    pub async fn get(&self) -> anyhow::Result<(Value, AppSettings)> {
        if let Some((at, doc, settings)) = self.cached.read().expect("settings lock").as_ref()
            && self.clock.now_ms() - at < MAX_AGE.as_millis() as i64
        {
            return Ok((doc.clone(), settings.clone()));
        }
        let doc = match self.store.settings_document().await? {
            Some(text) => serde_json::from_str(&text)?,
            None => Value::Object(serde_json::Map::new()),
        };
        Ok(self.remember(doc))
    }

    /// Stores a new document and uses it from now on.
    pub async fn put(&self, doc: Value) -> anyhow::Result<AppSettings> {
        self.store.put_settings_document(&doc.to_string()).await?;
        Ok(self.remember(doc).1)
    }

    /// The stored document as it is now, not cached, and its text (for [`Self::replace`]).
    pub async fn fresh(&self) -> anyhow::Result<(Value, Option<String>)> {
        let text = self.store.settings_document().await?;
        let doc = match &text {
            Some(text) => serde_json::from_str(text)?,
            None => Value::Object(serde_json::Map::new()),
        };
        Ok((doc, text))
    }

    /// Stores `doc` if the stored document is still `expected` (from [`Self::fresh`]);
    /// `false` if another change came first: read again and redo the change.
    pub async fn replace(&self, expected: Option<&str>, doc: Value) -> anyhow::Result<bool> {
        if !self.store.replace_settings_document(expected, &doc.to_string()).await? {
            return Ok(false);
        }
        self.remember(doc);
        Ok(true)
    }

    fn remember(&self, doc: Value) -> (Value, AppSettings) {
        let settings = AppSettings::from_document(&doc);
        *self.cached.write().expect("settings lock") =
            Some((self.clock.now_ms(), doc.clone(), settings.clone()));
        (doc, settings)
    }
}
