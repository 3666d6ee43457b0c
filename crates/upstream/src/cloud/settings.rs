//! What the bridge is configured with (`[cloud]` in the settings).

use std::time::Duration;

pub use premise_base::Secret;

/// The Cloud API's own default base URL.
pub const GRAPH_URL: &str = "https://graph.facebook.com";

#[derive(Debug, Clone)]
pub struct CloudSettings {
    /// `https://graph.facebook.com`; tests point it at a fake.
    pub base_url: String,
    /// `v23.0`.
    pub api_version: String,
    pub phone_number_id: String,
    /// A system user's access token with `whatsapp_business_messaging`.
    pub access_token: Secret,
    /// The Meta app's secret: webhooks are signed with it.
    pub app_secret: Secret,
    /// What the Meta app's webhook set-up sends back to prove it is the one configured.
    pub verify_token: Secret,
    /// Sends per second to Cloud across the whole deployment.
    pub max_per_second: u32,
    /// A Cloud call without an answer within this has failed (transiently).
    pub timeout: Duration,
    /// The longest a send waits for its pacing slot; a later slot sends the message back to
    /// wait its turn outside. With `timeout`, within the engine's send timeout, so that never
    /// cuts a request Cloud may have taken (which would send the message twice).
    pub max_pacing_wait: Duration,
    /// How often the phone number is looked up, for `/v1/health`.
    pub check_interval: Duration,
    /// Internal hosts and networks that links Premise fetches may reach all the same.
    pub link_fetch_allow: super::fetch_guard::FetchAllow,
}
