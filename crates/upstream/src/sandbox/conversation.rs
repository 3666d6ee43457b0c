//! Conversation-based pricing as WhatsApp applied it: messages are billed per 24-hour
//! conversation with a user. A business message opens one if none is open: `user_initiated`
//! when the user wrote in the last 24 hours (the business is answering), otherwise
//! `business_initiated` (only templates get there when the window is enforced). Every message
//! until it expires is billed in it. Status webhooks carry it as `conversation` and `pricing`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use premise_base::UnixMs;
use premise_store::{ConversationOpening, SandboxConversation, Store, StoreError};
use premise_wire::{Billing, Conversation, ConversationOrigin, Pricing};
use tokio::sync::oneshot;

use super::window::{WINDOW_MS, window_open};

/// An open conversation with one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub id: String,
    pub user_initiated: bool,
    pub expires_ms: i64,
}

/// The conversation a business message sent at `now_ms` is billed in: the open one, if it has
/// not expired, or a new one (`new_id` names it).
pub fn billed_in(
    open: Option<&Open>,
    last_inbound_ms: Option<i64>,
    now_ms: i64,
    new_id: impl FnOnce() -> String,
) -> Open {
    match open {
        Some(open) if now_ms < open.expires_ms => open.clone(),
        _ => Open {
            id: new_id(),
            user_initiated: window_open(last_inbound_ms, now_ms),
            expires_ms: now_ms + WINDOW_MS,
        },
    }
}

impl Open {
    pub fn billing(&self) -> Billing {
        let origin = if self.user_initiated { "user_initiated" } else { "business_initiated" };
        Billing {
            conversation: Some(Conversation {
                id: self.id.clone(),
                expiration_timestamp: Some((self.expires_ms / 1000).to_string()),
                origin: ConversationOrigin { kind: origin.to_owned() },
            }),
            pricing: Pricing {
                billable: true,
                pricing_model: "CBP".to_owned(),
                category: origin.to_owned(),
                kind: None,
            },
        }
    }
}

/// A message's price under per-message pricing: `template_category` is the template's category
/// (`None` for a free-form message), `in_window` whether the customer wrote in the last 24 hours.
/// A free-form message (only possible in the window) is `service`, free; a utility template in
/// the window is free too; any other template is billed as its category.
pub fn per_message(template_category: Option<&str>, in_window: bool) -> Billing {
    let category = template_category.map_or("service".to_owned(), str::to_ascii_lowercase);
    let free = category == "service" || (category == "utility" && in_window);
    Billing {
        conversation: None,
        pricing: Pricing {
            billable: !free,
            pricing_model: "PMP".to_owned(),
            category,
            kind: Some(if free { "free_customer_service" } else { "regular" }.to_owned()),
        },
    }
}

/// The open conversation of each user, as this replica last knew it; the store has the truth
/// (a conversation another replica opened is billed in here too).
#[derive(Debug, Default)]
pub struct Conversations {
    open: Mutex<Known>,
    openings: Openings,
}

/// Conversations to open in the store, written together: while one write is under way the
/// next ones gather, and whoever writes next writes them all (a group commit). Ten thousand
/// new customers in the first seconds of a load were ten thousand commits.
#[derive(Debug, Default)]
struct Openings {
    waiting: Mutex<Vec<Opening>>,
    /// Held by the one writing.
    writer: tokio::sync::Mutex<()>,
}

type Opening =
    (String, SandboxConversation, oneshot::Sender<Result<SandboxConversation, NotShared>>);

/// Why a conversation could not be shared through the store (this replica bills in its own).
#[derive(Debug, Clone, thiserror::Error)]
enum NotShared {
    #[error("{0}")]
    Store(Arc<StoreError>),
    #[error("the store kept no conversation for the customer")]
    NotKept,
    #[error("the openings' lock was poisoned")]
    Poisoned,
}

impl Openings {
    async fn open(
        &self,
        store: &dyn Store,
        wa_id: &str,
        candidate: SandboxConversation,
        now_ms: i64,
    ) -> Result<SandboxConversation, NotShared> {
        let (answer, mut answered) = oneshot::channel();
        self.waiting.lock().map_err(|_| NotShared::Poisoned)?.push((
            wa_id.to_owned(),
            candidate,
            answer,
        ));
        let _writing = self.writer.lock().await;
        // The previous writer may have written this one along with its own.
        if let Ok(done) = answered.try_recv() {
            return done;
        }
        let batch = std::mem::take(&mut *self.waiting.lock().map_err(|_| NotShared::Poisoned)?);
        let openings: Vec<ConversationOpening> = batch
            .iter()
            .map(|(wa_id, candidate, _)| ConversationOpening {
                wa_id: wa_id.clone(),
                candidate: candidate.clone(),
            })
            .collect();
        let written = store
            .open_conversations(&openings, UnixMs(now_ms))
            .await
            .map_err(|e| NotShared::Store(Arc::new(e)));
        for (wa_id, _, answer) in batch {
            let _ = answer.send(match &written {
                Ok(open) => open.get(&wa_id).cloned().ok_or(NotShared::NotKept),
                Err(e) => Err(e.clone()),
            });
        }
        answered.try_recv().unwrap_or(Err(NotShared::NotKept))
    }
}

/// The conversations known here, and when expired ones were last dropped.
#[derive(Debug, Default)]
struct Known {
    by_wa_id: HashMap<String, Open>,
    pruned_at_ms: i64,
}

/// Expired conversations are dropped at most this often: walking every customer's entry on
/// every send cost 3% of the server's CPU with 10,000 customers.
const PRUNE_EVERY_MS: i64 = 60_000;

impl Conversations {
    /// The billing of a message to `wa_id` sent at `now_ms`: in the open conversation this
    /// replica knows, else in the one the store has, else in a new one (`new_id`), stored.
    pub async fn bill(
        &self,
        store: &dyn Store,
        wa_id: &str,
        last_inbound_ms: Option<i64>,
        now_ms: i64,
        new_id: impl FnOnce() -> String,
    ) -> Option<Billing> {
        let known =
            self.open.lock().ok()?.by_wa_id.get(wa_id).filter(|o| now_ms < o.expires_ms).cloned();
        let current = match known {
            Some(open) => open,
            None => {
                let candidate = billed_in(None, last_inbound_ms, now_ms, new_id);
                let stored = SandboxConversation {
                    id: candidate.id.clone(),
                    user_initiated: candidate.user_initiated,
                    expires: UnixMs(candidate.expires_ms),
                };
                match self.openings.open(store, wa_id, stored, now_ms).await {
                    Ok(open) => Open {
                        id: open.id,
                        user_initiated: open.user_initiated,
                        expires_ms: open.expires.ms(),
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "sandbox: cannot share the conversation");
                        candidate
                    }
                }
            }
        };
        let billing = current.billing();
        let mut known = self.open.lock().ok()?;
        if now_ms - known.pruned_at_ms >= PRUNE_EVERY_MS {
            known.by_wa_id.retain(|_, o| now_ms < o.expires_ms);
            known.pruned_at_ms = now_ms;
        }
        known.by_wa_id.insert(wa_id.to_owned(), current);
        Some(billing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversations_follow_the_window_and_last_24_hours() {
        let id = || "c1".to_owned();
        let business = billed_in(None, None, 1_000, id);
        assert!(!business.user_initiated);
        assert_eq!(business.expires_ms, 1_000 + WINDOW_MS);
        let same = billed_in(Some(&business), Some(2_000), 3_000, || "c2".to_owned());
        assert_eq!(same, business, "an open conversation is reused, whoever wrote since");
        let later = billed_in(Some(&business), Some(WINDOW_MS), 1_000 + WINDOW_MS, || "c3".into());
        assert_eq!((later.id.as_str(), later.user_initiated), ("c3", true), "expired: a new one");
        let billing = later.billing();
        let conversation = billing.conversation.as_ref().unwrap();
        assert_eq!(conversation.origin.kind, "user_initiated");
        assert_eq!(billing.pricing.category, "user_initiated");
        assert_eq!(billing.pricing.pricing_model, "CBP");
        assert_eq!(
            conversation.expiration_timestamp,
            Some(((1_000 + 2 * WINDOW_MS) / 1000).to_string())
        );
    }

    #[test]
    fn per_message_pricing_frees_service_and_utility_in_the_window() {
        let service = per_message(None, true);
        assert_eq!(service.conversation, None);
        assert_eq!(
            (
                service.pricing.billable,
                service.pricing.category.as_str(),
                service.pricing.kind.as_deref()
            ),
            (false, "service", Some("free_customer_service"))
        );
        let utility = per_message(Some("UTILITY"), true).pricing;
        assert_eq!(
            (utility.billable, utility.kind.as_deref()),
            (false, Some("free_customer_service"))
        );
        let outside = per_message(Some("UTILITY"), false).pricing;
        assert_eq!((outside.billable, outside.kind.as_deref()), (true, Some("regular")));
        let marketing = per_message(Some("MARKETING"), true).pricing;
        assert_eq!(
            (marketing.pricing_model.as_str(), marketing.category.as_str()),
            ("PMP", "marketing")
        );
        assert!(marketing.billable);
    }
}
