//! Webhook bodies Premise POSTs to the integration (`docs/onprem-api.md` section 9).

use serde::{Deserialize, Serialize};

/// Where a message is in its life. The order of the variants is the lifecycle order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    /// Accepted and queued; never sent as a callback.
    Queued,
    Sent,
    Delivered,
    Read,
    /// Terminal: the upstream refused the message for good.
    Failed,
}

impl MessageStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
        }
    }

    pub const fn code(self) -> i16 {
        self as i16
    }

    pub fn from_code(code: i16) -> Option<Self> {
        [Self::Queued, Self::Sent, Self::Delivered, Self::Read, Self::Failed]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

/// One error of a `failed` status (async codes, `docs/onprem-api.md` section 10.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusError {
    pub code: u32,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// One entry of `statuses[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCallback {
    pub id: String,
    pub recipient_id: String,
    pub status: MessageStatus,
    /// Unix seconds, as a string, as On-Premises sent it.
    pub timestamp: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub errors: Vec<StatusError>,
    /// The message's `biz_opaque_callback_data`, echoed in each of its status callbacks
    /// (Cloud API field).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub biz_opaque_callback_data: Option<String>,
    /// The conversation the message was billed in (`sent` and `delivered` only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub conversation: Option<Conversation>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pricing: Option<Pricing>,
    /// Who the customer is, as Meta said in this status (2026's fields), passed on unchanged.
    #[serde(flatten, default)]
    pub customer: StatusCustomer,
}

/// The customer's identifiers a status carries since Meta's business-scoped user ids: the
/// user's BSUID (`user_id`, `recipient_user_id`), parent BSUIDs and username, each only when
/// Meta sent it (`docs/onprem-api.md` section 15).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCustomer {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub recipient_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub parent_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub recipient_parent_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub username: Option<String>,
}

impl StatusCustomer {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// A 24-hour conversation, as status webhooks carried it under conversation-based pricing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    /// When the conversation ends, Unix seconds as a string (like `timestamp`). The Cloud API
    /// gives it on a conversation's first status only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expiration_timestamp: Option<String>,
    pub origin: ConversationOrigin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationOrigin {
    /// `user_initiated` or `business_initiated`.
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pricing {
    pub billable: bool,
    /// `PMP`: per-message pricing (Meta's model since July 2025); `CBP`: conversation-based.
    pub pricing_model: String,
    /// Under PMP the message's category (`marketing`, `utility`, `authentication`,
    /// `authentication_international`, `service`, `referral_conversion`); under CBP the
    /// conversation's origin type.
    pub category: String,
    /// Under PMP: `regular`, `free_customer_service` or `free_entry_point`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none", default)]
    pub kind: Option<String>,
}

/// What a message was billed as: its pricing, and under CBP its conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Billing {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub conversation: Option<Conversation>,
    pub pricing: Pricing,
}
