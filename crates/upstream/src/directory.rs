//! Who is on WhatsApp: what `/v1/contacts` asks once a number is well-formed.
//!
//! Today every well-formed number is on WhatsApp ([`Everyone`]): the sandbox network knows
//! everyone, and On-Premises v2.43+ answered `valid` for any number too. A directory with
//! numbers that are not on WhatsApp (the sandbox's documented test numbers, say) implements
//! [`Directory`] and replaces it where the server is wired together.

use async_trait::async_trait;
use premise_wire::contacts::PhoneNumber;

#[async_trait]
pub trait Directory: Send + Sync + std::fmt::Debug {
    /// The WhatsApp id of `number`, or `None` if it is not on WhatsApp.
    async fn lookup(&self, number: &PhoneNumber) -> Option<String>;
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
