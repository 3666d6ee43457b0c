//! The status lifecycle of a message as pure functions: `queued → sent → delivered → read`,
//! or `failed` (from queued or sent). Callbacks must follow that order for each message
//! (never `delivered` before `sent`), whatever order the events arrive in.

use std::collections::HashMap;

use premise_base::UnixMs;
use premise_store::{MessageState, NewCallback, StatusPlan, StatusUpdate, UpstreamId};
use premise_upstream::StatusEvent;
use premise_wire::{AppSettings, MessageStatus, StatusCallback};

/// The statuses a message passes through when an event of `target` arrives while it is at
/// `current`, in order. A later status implies the earlier ones (a `delivered` that overtook its
/// `sent` yields both); stale or repeated events yield nothing; `failed` is terminal.
pub fn advance(current: MessageStatus, target: MessageStatus) -> Vec<MessageStatus> {
    use MessageStatus::{Delivered, Failed, Queued, Read, Sent};
    match (current, target) {
        (Failed, _) | (_, Queued) => Vec::new(),
        (Queued | Sent, Failed) => vec![Failed],
        (_, Failed) => Vec::new(),
        _ => [Sent, Delivered, Read].into_iter().filter(|s| *s > current && *s <= target).collect(),
    }
}

/// What a batch of events changes, given the messages' current states: their new statuses
/// and the callbacks to queue (those the settings ask for), in event order.
pub fn plan(
    states: Vec<MessageState>,
    events: &[StatusEvent],
    settings: &AppSettings,
) -> StatusPlan {
    let mut states: HashMap<String, MessageState> =
        states.into_iter().map(|s| (s.id.clone(), s)).collect();
    let mut changed: Vec<String> = Vec::new();
    let mut reached: HashMap<String, Vec<(MessageStatus, UnixMs)>> = HashMap::new();
    let mut failures: HashMap<String, String> = HashMap::new();
    let mut callbacks = Vec::new();
    let mut upstream_ids = Vec::new();
    for event in events {
        let Some(state) = states.get_mut(&event.message_id) else { continue };
        if let Some(upstream_id) = &event.upstream_id {
            upstream_ids.push(UpstreamId {
                message_id: state.id.clone(),
                upstream_id: upstream_id.clone(),
            });
        }
        let steps = advance(state.status, event.status);
        let Some(last) = steps.last() else { continue };
        state.status = *last;
        if !changed.contains(&state.id) {
            changed.push(state.id.clone());
        }
        let at = UnixMs(event.at_ms);
        reached.entry(state.id.clone()).or_default().extend(steps.iter().map(|s| (*s, at)));
        if *last == MessageStatus::Failed && !event.errors.is_empty() {
            let errors = serde_json::to_string(&event.errors).expect("status errors serialise");
            failures.insert(state.id.clone(), errors);
        }
        // Conversation and pricing ride on `sent` and `delivered`, as on WhatsApp.
        let billing = |status| {
            matches!(status, MessageStatus::Sent | MessageStatus::Delivered)
                .then_some(event.billing.as_ref())
                .flatten()
        };
        for status in steps.iter().copied().filter(|s| settings.emits(*s)) {
            let callback = StatusCallback {
                id: state.id.clone(),
                recipient_id: state.recipient.as_str().to_owned(),
                status,
                timestamp: (event.at_ms / 1000).to_string(),
                kind: Some("message".to_owned()),
                errors: if status == MessageStatus::Failed {
                    event.errors.clone()
                } else {
                    Vec::new()
                },
                biz_opaque_callback_data: state.callback_data.clone(),
                conversation: billing(status).and_then(|b| b.conversation.clone()),
                pricing: billing(status).map(|b| b.pricing.clone()),
                customer: event.customer.clone(),
            };
            callbacks.push(NewCallback {
                shard: state.shard,
                recipient_crc: state.recipient.crc(),
                message_id: state.id.clone(),
                message_seq: state.seq,
                status,
                body: serde_json::to_string(&callback).expect("a status callback serialises"),
            });
        }
    }
    let updates = changed.into_iter().map(|id| StatusUpdate {
        status: states[&id].status,
        reached: reached.remove(&id).unwrap_or_default(),
        errors: failures.remove(&id),
        message_id: id,
    });
    StatusPlan { updates: updates.collect(), callbacks, upstream_ids }
}

#[cfg(test)]
mod tests {
    use premise_store::Routed;
    use premise_wire::MessageStatus::{self, Delivered, Failed, Queued, Read, Sent};
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn fills_gaps_and_ignores_stale_events() {
        assert_eq!(advance(Queued, Sent), vec![Sent]);
        assert_eq!(advance(Queued, Read), vec![Sent, Delivered, Read]);
        assert_eq!(advance(Delivered, Sent), vec![]);
        assert_eq!(advance(Read, Read), vec![]);
        assert_eq!(advance(Sent, Failed), vec![Failed]);
        assert_eq!(advance(Delivered, Failed), vec![]);
        assert_eq!(advance(Failed, Read), vec![]);
    }

    fn status() -> impl Strategy<Value = MessageStatus> {
        prop_oneof![Just(Queued), Just(Sent), Just(Delivered), Just(Read), Just(Failed)]
    }

    proptest! {
        /// Whatever order events come in, the callbacks of a message are a prefix of
        /// sent, delivered, read (or end in failed), each at most once.
        #[test]
        fn any_event_order_gives_lifecycle_ordered_callbacks(events in prop::collection::vec(status(), 0..12)) {
            let mut current = Queued;
            let mut emitted = Vec::new();
            for target in events {
                let steps = advance(current, target);
                if let Some(last) = steps.last() { current = *last; }
                emitted.extend(steps);
            }
            let without_failed: Vec<_> = emitted.iter().copied().filter(|s| *s != Failed).collect();
            prop_assert!([Sent, Delivered, Read].starts_with(&without_failed), "{emitted:?}");
            let failed = emitted.iter().filter(|s| **s == Failed).count();
            prop_assert!(failed <= 1);
            if failed == 1 {
                prop_assert_eq!(emitted.last(), Some(&Failed));
                prop_assert!(!emitted.contains(&Delivered));
            }
        }
    }

    #[test]
    fn plan_respects_settings_and_order() {
        let state = MessageState {
            id: "m1".into(),
            seq: 1,
            recipient: Routed::new("155"),
            shard: 0,
            status: Queued,
            callback_data: None,
        };
        let ev = |status| StatusEvent::new("m1", status, 5_000);
        let settings = AppSettings::default(); // sent not emitted by default
        let p = plan(vec![state], &[ev(Delivered), ev(Sent), ev(Read)], &settings);
        let at = UnixMs(5_000);
        assert_eq!(
            p.updates,
            vec![StatusUpdate {
                message_id: "m1".to_owned(),
                status: Read,
                reached: vec![(Sent, at), (Delivered, at), (Read, at)],
                errors: None,
            }]
        );
        let statuses: Vec<String> = p
            .callbacks
            .iter()
            .map(|c| {
                let v: serde_json::Value = serde_json::from_str(&c.body).unwrap();
                v["status"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(statuses, ["delivered", "read"]);
        let unknown = plan(vec![], &[ev(Sent)], &settings);
        assert!(unknown.updates.is_empty() && unknown.callbacks.is_empty());

        // biz_opaque_callback_data is echoed in every callback of its message, and only there.
        let with_data = MessageState {
            id: "m1".into(),
            seq: 1,
            recipient: Routed::new("155"),
            shard: 0,
            status: Queued,
            callback_data: Some("order-42".into()),
        };
        let without_data = MessageState { callback_data: None, ..with_data.clone() };
        let p = plan(vec![with_data], &[ev(Read)], &settings);
        assert_eq!(p.callbacks.len(), 2);
        for c in &p.callbacks {
            let v: serde_json::Value = serde_json::from_str(&c.body).unwrap();
            assert_eq!(v["biz_opaque_callback_data"], "order-42", "{v}");
        }
        let p = plan(vec![without_data], &[ev(Read)], &settings);
        for c in &p.callbacks {
            assert!(!c.body.contains("biz_opaque_callback_data"), "{}", c.body);
        }
    }
}
