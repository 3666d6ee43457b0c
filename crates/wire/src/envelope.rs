//! The envelope every On-Premises response travels in: payload keys, `meta`, and on failure
//! `errors[]` (`docs/onprem-api.md` section 10 and 14).

use serde::{Deserialize, Serialize};

use crate::ErrorCode;

/// `"meta": {"api_status": "stable", "version": "..."}`, present on every JSON response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub api_status: String,
    pub version: String,
}

impl Meta {
    pub fn stable(version: impl Into<String>) -> Self {
        Self { api_status: "stable".to_owned(), version: version.into() }
    }
}

/// One entry of `errors[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: u32,
    pub title: String,
    pub details: String,
}

impl ErrorDetail {
    pub fn new(code: ErrorCode, details: impl Into<String>) -> Self {
        Self { code: code.code(), title: code.title().to_owned(), details: details.into() }
    }
}

/// The client version Premise reports in `meta.version`: the newest one in Meta's own response
/// samples, so integrations that gate features on the version see a client that has them all.
pub const API_VERSION: &str = "v2.45.1";
