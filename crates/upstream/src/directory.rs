//! Who is on WhatsApp: what `/v1/contacts` asks once a number is well-formed.
//!
//! In the sandbox every well-formed number is on WhatsApp except its documented invalid test
//! number ([`SandboxDirectory`]); [`Everyone`] knows every number, as On-Premises v2.43+
//! answered `valid` for any number. A later upstream (the Cloud API) brings a directory of its own.

use async_trait::async_trait;
use premise_wire::contacts::PhoneNumber;

#[async_trait]
pub trait Directory: Send + Sync + std::fmt::Debug {
    /// The WhatsApp id of `number`, or `None` if it is not on WhatsApp.
    async fn lookup(&self, number: &PhoneNumber) -> Option<String>;
}

/// The sandbox's network: everyone is on WhatsApp but the invalid test number.
#[derive(Debug, Clone, Copy, Default)]
pub struct SandboxDirectory;

#[async_trait]
impl Directory for SandboxDirectory {
    async fn lookup(&self, number: &PhoneNumber) -> Option<String> {
        crate::test_numbers::is_valid(number.as_str()).then(|| number.as_str().to_owned())
    }
}

/// The directory in which every number is on WhatsApp, with its digits as its WhatsApp id.
#[derive(Debug, Clone, Copy, Default)]
pub struct Everyone;

#[async_trait]
impl Directory for Everyone {
    async fn lookup(&self, number: &PhoneNumber) -> Option<String> {
        Some(number.as_str().to_owned())
    }
}
