//! One storage story, run unchanged against SQLite and Postgres.

use std::sync::Arc;

use std::time::Duration;

use premise_base::UnixMs;
use premise_store::{
    Attempt, ConnectOptions, Journaled, KnownCustomer, Routed, Settled, Store, TokenSubject,
    UpstreamId, User, connect,
};
use premise_testkit::{TempDir, fresh_postgres_url};
use premise_wire::{MessageStatus, Role};

async fn sqlite() -> (Arc<dyn Store>, TempDir) {
    let dir = TempDir::new("premise-store");
    let store = connect(&dir.sqlite_url(), &ConnectOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    (store, dir)
}

async fn postgres() -> (Arc<dyn Store>, ()) {
    let store = connect(&fresh_postgres_url().await, &ConnectOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    (store, ())
}

/// Declares each story once per backend.
macro_rules! conformance {
    ($($story:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test] async fn $story() { let (s, _dir) = super::sqlite().await; super::$story(s).await; })*
        }
        mod on_postgres {
            $(#[tokio::test] async fn $story() { let (s, _g) = super::postgres().await; super::$story(s).await; })*
        }
    };
}

conformance!(
    migrations_are_idempotent_and_ready,
    users,
    tokens,
    login_failures,
    secrets,
    queue_shards_and_statuses,
    concurrent_recorders,
    sent_with_credentials,
    leases,
    queue_floor,
    inbound_messages,
    media_chunks,
    unfinished_media,
    contact_cache,
    idempotency_keys,
    webhook_journal,
    customers,
    inbound_webhooks_and_sandbox_templates,
    cloud_media,
    browse,
    retention,
    documents,
);

fn user(name: &str, role: Role) -> User {
    User {
        id: format!("id-{name}"),
        username: name.to_owned(),
        password_hash: format!("hash-{name}"),
        role,
        must_change_password: role == Role::Admin,
        created_at: secs(1_700_000_000),
    }
}

async fn migrations_are_idempotent_and_ready(store: Arc<dyn Store>) {
    assert!(store.ready().await.unwrap());
    store.migrate().await.unwrap();
    assert!(store.ready().await.unwrap());
}

async fn users(store: Arc<dyn Store>) {
    assert_eq!(store.user("alice").await.unwrap(), None);
    assert!(store.insert_user(&user("alice", Role::Admin)).await.unwrap());
    let mut other = user("alice", Role::User);
    other.id = "another".into();
    assert!(!store.insert_user(&other).await.unwrap(), "a taken name is refused");
    assert_eq!(store.user("alice").await.unwrap(), Some(user("alice", Role::Admin)));

    assert!(store.set_password("alice", "new-hash", false, "id-alice-2").await.unwrap());
    let alice = store.user("alice").await.unwrap().unwrap();
    assert_eq!((alice.password_hash.as_str(), alice.must_change_password), ("new-hash", false));
    assert_eq!(alice.id, "id-alice-2", "a new id: tokens of the old one no longer hold");
    assert!(!store.set_password("nobody", "x", false, "id").await.unwrap());

    assert!(store.delete_user("alice").await.unwrap());
    assert!(!store.delete_user("alice").await.unwrap());
    assert_eq!(store.user("alice").await.unwrap(), None);
}

async fn tokens(store: Arc<dyn Store>) {
    store.insert_user(&user("bob1", Role::User)).await.unwrap();
    let live = TokenSubject { user_id: "id-bob1".into(), role: Role::User, revoked: false };
    assert_eq!(store.token_subject("bob1", "jti-1").await.unwrap(), Some(live.clone()));
    assert_eq!(store.token_subject("ghost", "jti-1").await.unwrap(), None);

    store.revoke_token("jti-1", secs(2_000), secs(1_000)).await.unwrap();
    store.revoke_token("jti-1", secs(2_000), secs(1_000)).await.unwrap(); // twice is fine
    let revoked = store.token_subject("bob1", "jti-1").await.unwrap().unwrap();
    assert!(revoked.revoked);
    assert!(!store.token_subject("bob1", "jti-2").await.unwrap().unwrap().revoked);

    // A revocation is forgotten once its token has expired anyway.
    store.revoke_token("jti-3", secs(5_000), secs(3_000)).await.unwrap();
    assert!(!store.token_subject("bob1", "jti-1").await.unwrap().unwrap().revoked);
    assert!(store.token_subject("bob1", "jti-3").await.unwrap().unwrap().revoked);
}

async fn login_failures(store: Arc<dyn Store>) {
    let window = Duration::from_secs(60);
    assert_eq!(store.login_failures("10.0.0.1", secs(1_000), window).await.unwrap(), 0);
    for expected in 1..=3 {
        assert_eq!(
            store.record_login_failure("10.0.0.1", secs(1_000 + expected), window).await.unwrap(),
            expected as u32
        );
    }
    assert_eq!(store.login_failures("10.0.0.1", secs(1_010), window).await.unwrap(), 3);
    assert_eq!(
        store.login_failures("10.0.0.2", secs(1_010), window).await.unwrap(),
        0,
        "per client"
    );
    // The window started at 1_001 and lasts 60 s.
    assert_eq!(store.login_failures("10.0.0.1", secs(1_061), window).await.unwrap(), 0);
    assert_eq!(
        store.record_login_failure("10.0.0.1", secs(1_061), window).await.unwrap(),
        1,
        "a new window"
    );
    store.clear_login_failures("10.0.0.1").await.unwrap();
    assert_eq!(store.login_failures("10.0.0.1", secs(1_062), window).await.unwrap(), 0);
}

async fn secrets(store: Arc<dyn Store>) {
    let first = store.secret_or_init("jwt", b"first").await.unwrap();
    assert_eq!(first, b"first");
    assert_eq!(store.secret_or_init("jwt", b"second").await.unwrap(), b"first");
    assert_eq!(store.secret_or_init("other", b"x").await.unwrap(), b"x");
}

/// A moment `n` ms after the epoch; one `n` s after it.
fn ms(n: i64) -> UnixMs {
    UnixMs(n)
}
fn secs(n: i64) -> UnixMs {
    UnixMs::from_secs(n)
}

/// A recipient whose routing key falls on the shards a key of `crc` would: the same remainder
/// modulo 8, so for every shard count these stories use (1, 2 and 4).
fn routed_like(crc: u32) -> Routed {
    (0..).map(|i| Routed::new(format!("r{crc}-{i}"))).find(|r| r.crc() % 8 == crc % 8).unwrap()
}

fn message(n: u32, recipient_crc: u32) -> premise_store::NewMessage {
    premise_store::NewMessage {
        id: format!("m{n}"),
        recipient: routed_like(recipient_crc),
        payload: format!("{{\"n\":{n}}}"),
        accepted_at: ms(1_000 + i64::from(n)),
        callback_data: (n == 2).then(|| "opaque-2".to_owned()),
        credential: None,
        idempotency: None,
    }
}

/// A message sent with a login token is stored only if the token still holds when it is
/// stored: its account there with the token's id, the token not revoked.
async fn sent_with_credentials(store: Arc<dyn Store>) {
    use premise_store::Credential;
    store.insert_user(&user("carol", Role::User)).await.unwrap();
    store.revoke_token("jti-revoked", secs(9_999_999_999), secs(1_000)).await.unwrap();
    let with = |n: u32, username: &str, user_id: &str, jti: &str| {
        let credential = Credential {
            username: username.to_owned(),
            user_id: user_id.to_owned(),
            jti: jti.to_owned(),
        };
        premise_store::NewMessage { credential: Some(credential), ..message(n, 7) }
    };
    let batch = [
        with(1, "carol", "id-carol", "jti-good"),
        with(2, "carol", "id-carol", "jti-revoked"),
        with(3, "carol", "id-of-a-deleted-carol", "jti-good"),
        message(4, 7),
        with(5, "nobody", "id-nobody", "jti-good"),
        with(6, "carol", "id-carol", "jti-good"),
    ];
    let enqueued = store.enqueue(&batch).await.unwrap();
    let stored: Vec<&str> = enqueued.messages.iter().map(|p| p.message.id.as_str()).collect();
    assert_eq!(stored, ["m1", "m4", "m6"], "stored in batch order");
    assert_eq!(enqueued.refused, ["m2", "m3", "m5"]);
    assert_eq!(enqueued.last_seq, enqueued.messages[2].message.seq);
    let account = store.account().await.unwrap();
    let queued = store.queued(0, account.generation, 0, 10).await.unwrap();
    assert_eq!(
        queued.messages,
        enqueued.messages.iter().map(|p| p.message.clone()).collect::<Vec<_>>()
    );
    assert_eq!(queued.covered_through, enqueued.last_seq);
    assert_eq!(store.backlog().await.unwrap().queued, 3);

    // The account deleted: nothing sent with its tokens is stored; nothing is stored at all.
    assert!(store.delete_user("carol").await.unwrap());
    let none = store.enqueue(&[with(7, "carol", "id-carol", "jti-good")]).await.unwrap();
    assert!(none.messages.is_empty());
    assert_eq!(none.refused, ["m7"]);
    assert_eq!((none.previous_seq, none.last_seq), (enqueued.last_seq, enqueued.last_seq));
    // Re-created under the same name, the old tokens stay dead; its own work.
    let mut again = user("carol", Role::User);
    again.id = "id-carol-2".into();
    assert!(store.insert_user(&again).await.unwrap());
    let mixed = store
        .enqueue(&[
            with(8, "carol", "id-carol", "jti-good"),
            with(9, "carol", "id-carol-2", "jti-new"),
        ])
        .await
        .unwrap();
    assert_eq!(mixed.refused, ["m8"]);
    assert_eq!(mixed.messages.len(), 1);
    assert_eq!(mixed.messages[0].message.id, "m9");
    assert_eq!(mixed.previous_seq, enqueued.last_seq);
}

/// The plan that moves each message to `sent` (status 1), with a callback and an upstream id.
fn sent_plan(states: &[&premise_store::MessageState]) -> premise_store::StatusPlan {
    premise_store::StatusPlan {
        updates: states.iter().map(|s| status_update(&s.id, MessageStatus::Sent)).collect(),
        callbacks: states
            .iter()
            .map(|s| premise_store::NewCallback {
                shard: s.shard,
                recipient_crc: s.recipient.crc(),
                message_id: s.id.clone(),
                message_seq: s.seq,
                status: MessageStatus::Sent,
                body: format!("{{\"id\":\"{}\"}}", s.id),
            })
            .collect(),
        upstream_ids: states
            .iter()
            .map(|s| upstream_id(&s.id, &format!("wamid.{}", s.id)))
            .collect(),
    }
}

/// `status` reached at 4 s.
fn status_update(id: &str, status: MessageStatus) -> premise_store::StatusUpdate {
    premise_store::StatusUpdate::to(id, status, ms(4_000))
}

/// An attempt at `at` ms that the receiver answered `http_status` in 25 ms.
fn attempt(at: i64, http_status: u16) -> Attempt {
    let error = (!(200..300).contains(&http_status))
        .then(|| format!("the receiver answered {http_status}"));
    Attempt {
        at: ms(at),
        http_status: Some(http_status),
        latency: Duration::from_millis(25),
        error,
    }
}

/// The callbacks `seqs` delivered by a POST at `at` ms.
async fn delivered(store: &Arc<dyn Store>, seqs: &[i64], at: i64) {
    let settled = Settled { seqs: seqs.to_vec(), attempt: attempt(at, 200), retry_at: None };
    store.settle_callbacks(&[settled]).await.unwrap();
}

/// The callbacks `seqs` refused (500) by a POST at `at` ms, to be tried again at `retry_at` ms.
async fn refused(store: &Arc<dyn Store>, seqs: &[i64], at: i64, retry_at: i64) {
    let settled =
        Settled { seqs: seqs.to_vec(), attempt: attempt(at, 500), retry_at: Some(ms(retry_at)) };
    store.settle_callbacks(&[settled]).await.unwrap();
}

fn upstream_id(message_id: &str, upstream_id: &str) -> UpstreamId {
    UpstreamId { message_id: message_id.to_owned(), upstream_id: upstream_id.to_owned() }
}

async fn queue_shards_and_statuses(store: Arc<dyn Store>) {
    assert_eq!(store.account().await.unwrap().shards, 1);
    let generation = store.account().await.unwrap().generation;
    let first = store.enqueue(&[message(1, 5), message(2, 6), message(3, 5)]).await.unwrap();
    assert_eq!((first.previous_seq, first.generation), (0, generation));
    assert_eq!(
        first.messages.iter().map(|p| (p.shard, p.message.id.as_str())).collect::<Vec<_>>(),
        [(0, "m1"), (0, "m2"), (0, "m3")]
    );
    assert_eq!(first.last_seq, first.messages[2].message.seq);
    let read = store.queued(0, generation, 0, 10).await.unwrap();
    assert_eq!(read.covered_through, first.last_seq, "a short read covers up to the last commit");
    assert_eq!(read.messages, first.messages.iter().map(|p| p.message.clone()).collect::<Vec<_>>());
    let page = store.queued(0, generation, 0, 2).await.unwrap();
    assert_eq!(page.covered_through, page.messages[1].seq, "a full page covers up to its end");
    let queued = store.queued(0, generation, 0, 10).await.unwrap().messages;
    assert_eq!(
        queued.iter().map(|q| q.id.as_str()).collect::<Vec<_>>(),
        ["m1", "m2", "m3"],
        "acceptance order"
    );
    assert!(queued.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        store.queued(0, generation, queued[0].seq, 10).await.unwrap().messages.len(),
        2,
        "after the cursor"
    );
    assert_eq!(store.backlog().await.unwrap().queued, 3);
    assert_eq!(
        store.shard_backlogs().await.unwrap(),
        [premise_store::ShardBacklog {
            shard: 0,
            queued: 3,
            oldest_queued_at: Some(ms(1_001)),
            callbacks: 0
        }],
        "per shard, with the oldest acceptance time"
    );

    // Changing the shard count moves queued messages and bumps the generation.
    let account = store.set_shards(4).await.unwrap();
    assert_eq!((account.shards, account.generation), (4, generation + 1));
    let stale = store.queued(1, generation, 0, 10).await.unwrap();
    assert!(stale.messages.is_empty(), "an old generation reads nothing");
    assert_eq!(stale.covered_through, 0, "and learns nothing");
    let shard1: Vec<String> = store
        .queued(1, account.generation, 0, 10)
        .await
        .unwrap()
        .messages
        .into_iter()
        .map(|q| q.id)
        .collect();
    assert_eq!(shard1, ["m1", "m3"], "crc 5 % 4 = 1");
    assert_eq!(store.queued(2, account.generation, 0, 10).await.unwrap().messages[0].id, "m2");
    assert_eq!(
        store.set_shards(4).await.unwrap().generation,
        account.generation,
        "no change, same generation"
    );
    let next = store.enqueue(&[message(4, 7)]).await.unwrap();
    assert_eq!(next.previous_seq, first.last_seq, "each batch knows the one before");
    assert_eq!((next.messages[0].shard, next.generation), (3, account.generation), "7 % 4 = 3");
    assert_eq!(
        store.queued(3, account.generation, 0, 10).await.unwrap().messages[0].id,
        "m4",
        "new messages use the new count"
    );

    // Recording statuses: the plan sees current states and its writes land together.
    let plan = |states: Vec<premise_store::MessageState>| {
        assert_eq!(states.len(), 2, "unknown ids are left out");
        for s in &states {
            let expected = (s.id == "m2").then_some("opaque-2");
            assert_eq!(s.callback_data.as_deref(), expected, "callback data of {}", s.id);
        }
        sent_plan(&states.iter().collect::<Vec<_>>())
    };
    store
        .record_statuses(&["m1".into(), "m2".into(), "nope".into()], ms(5_000), &plan)
        .await
        .unwrap();
    assert_eq!(
        store.queued(1, account.generation, 0, 10).await.unwrap().messages[0].id,
        "m3",
        "sent messages leave the queue"
    );
    assert_eq!(store.message("m1").await.unwrap().map(|m| m.status), Some(MessageStatus::Sent));
    let mut mapped = store
        .messages_by_upstream_id(&["wamid.m2".into(), "wamid.m1".into(), "wamid.nope".into()])
        .await
        .unwrap();
    mapped.sort();
    assert_eq!(
        mapped,
        [upstream_id("m1", "wamid.m1"), upstream_id("m2", "wamid.m2")],
        "upstream ids are written with the plan; unknown ones are left out"
    );
    let mut ids_of = store
        .upstream_ids_of(&["m1".into(), "m2".into(), "m3".into(), "nope".into()])
        .await
        .unwrap();
    ids_of.sort();
    assert_eq!(
        ids_of,
        [upstream_id("m1", "wamid.m1"), upstream_id("m2", "wamid.m2")],
        "messages without an upstream id are left out"
    );
    assert_eq!(
        store
            .unfinished(1, 10)
            .await
            .unwrap()
            .iter()
            .map(|u| u.message_id.as_str())
            .collect::<Vec<_>>(),
        ["m1"]
    );
    let callbacks = store.pending_callbacks(&[1], 10).await.unwrap();
    assert_eq!(callbacks.len(), 1);
    assert_eq!(callbacks[0].message_id, "m1");
    assert_eq!(callbacks[0].last_error, None);
    refused(&store, &[callbacks[0].seq], 6_000, 9_000).await;
    let again = store.pending_callbacks(&[1], 10).await.unwrap();
    assert_eq!((again[0].failures, again[0].next_attempt_at), (1, ms(9_000)));
    assert_eq!(again[0].last_error.as_deref(), Some("the receiver answered 500"));
    delivered(&store, &[again[0].seq], 9_000).await;
    assert!(store.pending_callbacks(&[1], 10).await.unwrap().is_empty());
    // The message's history: when it was sent, and both attempts of its callback.
    let history = store.message_history("m1").await.unwrap().unwrap();
    assert_eq!(history.reached, [(MessageStatus::Sent, ms(4_000))]);
    assert_eq!(history.errors, None);
    let attempts: Vec<_> =
        history.attempts.iter().map(|a| (a.callback_seq, a.status, a.attempt.clone())).collect();
    let seq = callbacks[0].seq;
    let sent = Some(MessageStatus::Sent);
    assert_eq!(attempts, [(seq, sent, attempt(6_000, 500)), (seq, sent, attempt(9_000, 200))]);
    assert!(store.message_history("nope").await.unwrap().is_none());
    // A settle naming a callback gone meanwhile logs nothing for it.
    delivered(&store, &[seq], 9_500).await;
    assert_eq!(store.message_history("m1").await.unwrap().unwrap().attempts.len(), 2);
    assert_eq!(store.backlog().await.unwrap().callbacks, 1, "m2's callback waits on shard 2");
    let held = store.pending_callbacks(&[0, 2, 3], 10).await.unwrap();
    assert_eq!(held.iter().map(|c| c.message_id.as_str()).collect::<Vec<_>>(), ["m2"]);
    assert!(
        store.pending_callbacks(&[0, 3], 10).await.unwrap().is_empty(),
        "only the shards asked"
    );
    assert!(store.pending_callbacks(&[], 10).await.unwrap().is_empty());
    let backlogs = store.shard_backlogs().await.unwrap();
    assert!(backlogs.iter().any(|b| b.shard == 2 && b.callbacks == 1), "{backlogs:?}");

    assert_eq!(store.settings_document().await.unwrap(), None);
    store.put_settings_document("{\"a\":1}").await.unwrap();
    store.put_settings_document("{\"a\":2}").await.unwrap();
    assert_eq!(store.settings_document().await.unwrap().as_deref(), Some("{\"a\":2}"));
}

/// Recorders on several replicas may record the same message at once: each change is written
/// once, with its callbacks once, whoever read the state first.
async fn concurrent_recorders(store: Arc<dyn Store>) {
    use premise_store::MessageState;
    let batch: Vec<_> = (1..=40).map(|n| message(n, 0)).collect();
    store.enqueue(&batch).await.unwrap();
    let ids: Vec<String> = batch.iter().map(|m| m.id.clone()).collect();
    // Each recorder moves every message it finds below `sent` to `sent`, with a callback.
    let plan = |states: Vec<MessageState>| {
        let behind: Vec<&MessageState> =
            states.iter().filter(|s| s.status < MessageStatus::Sent).collect();
        sent_plan(&behind)
    };
    let record = || store.record_statuses(&ids, ms(7_000), &plan);
    let (a, b, c, d) = tokio::join!(record(), record(), record(), record());
    for result in [a, b, c, d] {
        result.unwrap();
    }
    let callbacks = store.pending_callbacks(&[0], 1_000).await.unwrap();
    let mut written: Vec<&str> = callbacks.iter().map(|c| c.message_id.as_str()).collect();
    written.sort_unstable();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(written, expected, "one callback per message");
    for id in &ids {
        assert_eq!(
            store.message(id).await.unwrap().map(|m| m.status),
            Some(MessageStatus::Sent),
            "{id}"
        );
    }
    let mapped = store.messages_by_upstream_id(&[format!("wamid.{}", ids[0])]).await.unwrap();
    assert_eq!(mapped, [upstream_id(&ids[0], &format!("wamid.{}", ids[0]))]);
}

async fn leases(store: Arc<dyn Store>) {
    let g = store.account().await.unwrap().generation;
    let a = store
        .acquire_lease(0, "a", g, Some(ms(1_000)), Duration::from_millis(500))
        .await
        .unwrap()
        .expect("free");
    assert!(
        store
            .acquire_lease(0, "b", g, Some(ms(1_200)), Duration::from_millis(500))
            .await
            .unwrap()
            .is_none(),
        "held"
    );
    assert!(
        store.renew_lease(&a, "a", Some(ms(1_400)), Duration::from_millis(500), 0).await.unwrap()
    );
    assert!(
        !store.renew_lease(&a, "b", Some(ms(1_400)), Duration::from_millis(500), 0).await.unwrap(),
        "only the owner renews"
    );
    // Expired: another takes it, with a higher epoch, and the old owner's renewal fails.
    let b = store
        .acquire_lease(0, "b", g, Some(ms(2_000)), Duration::from_millis(500))
        .await
        .unwrap()
        .expect("expired");
    assert!(b.epoch > a.epoch);
    assert!(
        !store.renew_lease(&a, "a", Some(ms(2_100)), Duration::from_millis(500), 0).await.unwrap(),
        "fenced"
    );
    store.release_lease(&a, "a", 0).await.unwrap(); // a stale release changes nothing
    assert!(
        store
            .acquire_lease(0, "c", g, Some(ms(2_200)), Duration::from_millis(500))
            .await
            .unwrap()
            .is_none()
    );
    store.release_lease(&b, "b", 0).await.unwrap();
    let c = store
        .acquire_lease(0, "c", g, Some(ms(2_200)), Duration::from_millis(500))
        .await
        .unwrap()
        .expect("released");

    // A new generation waits until every lease of the old one is gone.
    let g2 = store.set_shards(2).await.unwrap().generation;
    assert!(
        store
            .acquire_lease(0, "a", g, Some(ms(2_300)), Duration::from_millis(500))
            .await
            .unwrap()
            .is_none(),
        "a stale generation"
    );
    assert!(
        store
            .acquire_lease(1, "a", g2, Some(ms(2_300)), Duration::from_millis(500))
            .await
            .unwrap()
            .is_none(),
        "old lease still alive"
    );
    assert!(
        store.renew_lease(&c, "c", Some(ms(2_400)), Duration::from_millis(500), 0).await.unwrap(),
        "an old lease can finish its work"
    );
    store.release_lease(&c, "c", 0).await.unwrap();
    assert!(
        store
            .acquire_lease(1, "a", g2, Some(ms(2_500)), Duration::from_millis(500))
            .await
            .unwrap()
            .is_some()
    );

    let nodes =
        store.heartbeat("a", Some(ms(10_000)), Duration::from_millis(1_000), "{}").await.unwrap();
    assert_eq!(nodes.len(), 1);
    store
        .heartbeat("b", Some(ms(10_500)), Duration::from_millis(1_000), r#"{"sent":7}"#)
        .await
        .unwrap();
    let nodes = store
        .heartbeat("a", Some(ms(11_000)), Duration::from_millis(800), r#"{"sent":1}"#)
        .await
        .unwrap();
    assert_eq!(
        nodes.iter().map(|n| (n.node.as_str(), n.stats.as_deref())).collect::<Vec<_>>(),
        [("a", Some(r#"{"sent":1}"#)), ("b", Some(r#"{"sent":7}"#))],
        "each with the figures it published"
    );
    assert_eq!(
        store
            .heartbeat("a", Some(ms(12_000)), Duration::from_millis(1_000), "{}")
            .await
            .unwrap()
            .len(),
        1,
        "b is not heard of since"
    );
    store.leave("a").await.unwrap();
    assert_eq!(
        store
            .heartbeat("b", Some(ms(12_100)), Duration::from_millis(1_100), "{}")
            .await
            .unwrap()
            .len(),
        1,
        "a left"
    );

    // Without a time given, the database's clock decides: the leases and heartbeats above
    // (timed in 1970) are long expired, a lease taken now holds for its ttl whatever time the
    // caller's own clock shows.
    let db_now = store.database_time().await.unwrap().ms();
    let here = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let here = i64::try_from(here.as_millis()).unwrap();
    assert!((db_now - here).abs() < 5_000, "the database's clock: {db_now}, here: {here}");
    let d = store
        .acquire_lease(1, "d", g2, None, Duration::from_millis(60_000))
        .await
        .unwrap()
        .expect("expired");
    assert!(
        store
            .acquire_lease(1, "e", g2, None, Duration::from_millis(60_000))
            .await
            .unwrap()
            .is_none(),
        "held"
    );
    assert!(store.renew_lease(&d, "d", None, Duration::from_millis(60_000), 0).await.unwrap());
    let nodes = store.heartbeat("d", None, Duration::from_millis(10_000), "{}").await.unwrap();
    assert_eq!(nodes.iter().map(|n| n.node.as_str()).collect::<Vec<_>>(), ["d"]);
    assert!((nodes[0].heartbeat_at.ms() - db_now).abs() < 5_000);
}

/// The queue is read from each shard's floor, which only the lease's holder raises; a shard
/// count change moves what is queued above the lowest floor and gives every new shard that.
async fn queue_floor(store: Arc<dyn Store>) {
    use premise_store::{NewCallback, StatusPlan};
    store.set_shards(2).await.unwrap();
    let g = store.account().await.unwrap().generation;
    // Recipients 4 and 6 are on shard 0, 5 on shard 1.
    let enqueued = store
        .enqueue(&[message(1, 4), message(2, 6), message(3, 5), message(4, 4), message(5, 5)])
        .await
        .unwrap();
    let seq = |id: &str| {
        enqueued
            .messages
            .iter()
            .find(|p| p.message.id == id)
            .map(|p| p.message.seq)
            .expect("enqueued")
    };
    let ids = |read: premise_store::QueueRead| {
        read.messages.into_iter().map(|m| m.id).collect::<Vec<_>>()
    };
    assert_eq!(ids(store.queued(0, g, 0, 10).await.unwrap()), ["m1", "m2", "m4"]);
    // m1 is sent, and its worker says with its lease's renewal that nothing below m2 is
    // queued on shard 0.
    let sent = |states: Vec<premise_store::MessageState>| StatusPlan {
        updates: states.iter().map(|s| status_update(&s.id, MessageStatus::Sent)).collect(),
        callbacks: Vec::<NewCallback>::new(),
        upstream_ids: Vec::new(),
    };
    store.record_statuses(&["m1".to_owned()], ms(2_000), &sent).await.unwrap();
    let a = store
        .acquire_lease(0, "a", g, Some(ms(1_000)), Duration::from_millis(500))
        .await
        .unwrap()
        .expect("free");
    assert!(
        store
            .renew_lease(&a, "a", Some(ms(1_100)), Duration::from_millis(500), seq("m2"))
            .await
            .unwrap()
    );
    let b = premise_store::Lease { epoch: a.epoch + 1, ..a };
    assert!(
        !store
            .renew_lease(&b, "b", Some(ms(1_100)), Duration::from_millis(500), seq("m4"))
            .await
            .unwrap(),
        "not b's"
    );
    assert!(
        store
            .renew_lease(&a, "a", Some(ms(1_200)), Duration::from_millis(500), seq("m1"))
            .await
            .unwrap()
    );
    assert_eq!(
        ids(store.queued(0, g, 0, 10).await.unwrap()),
        ["m2", "m4"],
        "from the holder's floor: neither another owner's nor a lower one counted"
    );
    assert_eq!(store.backlog().await.unwrap().queued, 4);
    // A later owner of the shard in the same generation starts from the floor reached, and
    // records its own when it hands the shard back.
    let c = store
        .acquire_lease(0, "c", g, Some(ms(5_000)), Duration::from_millis(500))
        .await
        .unwrap()
        .expect("expired");
    assert_eq!(ids(store.queued(0, g, 0, 10).await.unwrap()), ["m2", "m4"]);
    store.release_lease(&c, "c", seq("m4") + 1).await.unwrap();
    assert!(store.queued(0, g, 0, 10).await.unwrap().messages.is_empty(), "m2, m4 below it");

    // One shard: what is queued above the lowest floor of the two moves; shard 1 had no
    // lease, so its floor is the account's (0), and m2 and m4 come back with the rest.
    let account = store.set_shards(1).await.unwrap();
    assert_eq!(
        ids(store.queued(0, account.generation, 0, 10).await.unwrap()),
        ["m2", "m3", "m4", "m5"],
        "m1, sent, stays where it was"
    );
    let d = store
        .acquire_lease(0, "d", account.generation, Some(ms(9_000)), Duration::from_millis(500))
        .await
        .unwrap();
    let d = d.expect("a new generation, the old lease expired");
    assert!(
        store
            .renew_lease(&d, "d", Some(ms(9_100)), Duration::from_millis(500), seq("m3"))
            .await
            .unwrap()
    );
    assert_eq!(
        ids(store.queued(0, account.generation, 0, 10).await.unwrap()),
        ["m3", "m4", "m5"],
        "the floor of the new generation's lease"
    );
    assert_eq!(store.backlog().await.unwrap().queued, 3, "counted from the floor");
    // Two shards again: every shard starts from the lowest floor (m3), not shard 0's old one.
    let account = store.set_shards(2).await.unwrap();
    let e = store
        .acquire_lease(0, "e", account.generation, Some(ms(20_000)), Duration::from_millis(500))
        .await
        .unwrap();
    assert!(e.is_some());
    assert_eq!(ids(store.queued(0, account.generation, 0, 10).await.unwrap()), ["m4"]);
    assert_eq!(ids(store.queued(1, account.generation, 0, 10).await.unwrap()), ["m3", "m5"]);
}

async fn inbound_messages(store: Arc<dyn Store>) {
    let payload = r#"{"from":"16315551234","id":"ABGGFlA5Fpa","type":"text","text":{"body":"hi"}}"#;
    assert_eq!(store.inbound("ABGGFlA5Fpa").await.unwrap(), None);
    assert!(!store.mark_inbound_read("ABGGFlA5Fpa", ms(10)).await.unwrap(), "unknown id");
    assert!(store.insert_inbound("ABGGFlA5Fpa", "16315551234", ms(1_000), payload).await.unwrap());
    assert!(
        !store.insert_inbound("ABGGFlA5Fpa", "other", ms(2_000), "{}").await.unwrap(),
        "an id is stored once; the first is kept"
    );
    let stored = store.inbound("ABGGFlA5Fpa").await.unwrap().unwrap();
    assert_eq!(
        stored,
        premise_store::InboundMessage {
            id: "ABGGFlA5Fpa".into(),
            from: "16315551234".into(),
            received_at: ms(1_000),
            payload: payload.into(),
            read_at: None,
        }
    );
    assert!(store.mark_inbound_read("ABGGFlA5Fpa", ms(5_000)).await.unwrap());
    assert!(store.mark_inbound_read("ABGGFlA5Fpa", ms(6_000)).await.unwrap(), "again is fine");
    let read = store.inbound("ABGGFlA5Fpa").await.unwrap().unwrap();
    assert_eq!(read.read_at, Some(ms(5_000)), "the first read counts");
}

async fn media_chunks(store: Arc<dyn Store>) {
    // Chunks of different sizes, with every byte value, read back exactly.
    let chunks: Vec<Vec<u8>> =
        vec![(0..=255u8).cycle().take(300_000).collect(), vec![0; 7], (0..=255u8).rev().collect()];
    assert!(store.begin_media("m-1", "image/png", secs(1_000)).await.unwrap());
    assert!(!store.begin_media("m-1", "image/png", secs(1_000)).await.unwrap(), "ids are unique");
    for (i, chunk) in chunks.iter().enumerate() {
        store.put_media_chunk("m-1", i as u32, chunk).await.unwrap();
    }
    assert_eq!(store.media("m-1").await.unwrap(), None, "invisible until finished");
    assert!(!store.media_exists("m-1").await.unwrap());
    let size = chunks.iter().map(Vec::len).sum::<usize>() as u64;
    assert!(store.finish_media("m-1", size, 3, "abc123").await.unwrap());
    assert!(!store.finish_media("m-1", size, 3, "abc123").await.unwrap(), "finished once");
    let info = store.media("m-1").await.unwrap().expect("finished");
    assert_eq!(
        (info.mime_type.as_str(), info.size, info.chunks, info.sha256.as_str(), info.created_at),
        ("image/png", size, 3, "abc123", secs(1_000))
    );
    assert!(store.media_exists("m-1").await.unwrap());
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(store.media_chunk("m-1", i as u32).await.unwrap().as_ref(), Some(chunk));
    }
    assert_eq!(store.media_chunk("m-1", 3).await.unwrap(), None, "past the end");
    assert_eq!(store.media("nope").await.unwrap(), None);
    assert!(!store.media_exists("nope").await.unwrap());

    assert!(store.delete_media("m-1").await.unwrap());
    assert!(!store.delete_media("m-1").await.unwrap());
    assert_eq!(store.media("m-1").await.unwrap(), None);
    assert_eq!(store.media_chunk("m-1", 0).await.unwrap(), None, "the chunks went too");
    assert!(!store.finish_media("m-1", size, 3, "abc123").await.unwrap(), "a deleted upload");
}

async fn unfinished_media(store: Arc<dyn Store>) {
    assert!(store.begin_media("old", "video/mp4", secs(1_000)).await.unwrap());
    store.put_media_chunk("old", 0, b"abc").await.unwrap();
    assert!(store.begin_media("new", "video/mp4", secs(5_000)).await.unwrap());
    assert!(store.begin_media("done", "video/mp4", secs(1_000)).await.unwrap());
    store.put_media_chunk("done", 0, b"xyz").await.unwrap();
    assert!(store.finish_media("done", 3, 1, "h").await.unwrap());

    assert_eq!(
        store.purge_unfinished_media(secs(2_000)).await.unwrap(),
        1,
        "only the old unfinished"
    );
    assert_eq!(store.media_chunk("old", 0).await.unwrap(), None);
    assert!(!store.finish_media("old", 3, 1, "h").await.unwrap(), "purged uploads cannot finish");
    assert!(store.finish_media("new", 0, 0, "h").await.unwrap(), "a recent upload carries on");
    assert_eq!(store.media_chunk("done", 0).await.unwrap().as_deref(), Some(&b"xyz"[..]));
}

async fn contact_cache(store: Arc<dyn Store>) {
    use premise_store::ContactCheck;
    let check = |number: &str, valid: bool, at: i64| ContactCheck {
        number: number.to_owned(),
        wa_id: valid.then(|| number.to_owned()),
        checked_at: secs(at),
    };
    let numbers = |list: &[&str]| list.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    assert!(store.contact_checks(&numbers(&["111"]), secs(0)).await.unwrap().is_empty(), "a miss");

    store
        .record_contact_checks(&[check("111", true, 1_000), check("222", false, 1_500)], secs(0))
        .await
        .unwrap();
    let mut hits = store.contact_checks(&numbers(&["111", "222", "333"]), secs(900)).await.unwrap();
    hits.sort_by(|a, b| a.number.cmp(&b.number));
    assert_eq!(hits, [check("111", true, 1_000), check("222", false, 1_500)], "hits, invalid too");

    // Expiry: a check made at or before `fresh_after` is not used.
    let hits = store.contact_checks(&numbers(&["111", "222"]), secs(1_000)).await.unwrap();
    assert_eq!(hits, [check("222", false, 1_500)]);

    // A forced check replaces the cached one.
    store.record_contact_checks(&[check("222", true, 2_000)], secs(0)).await.unwrap();
    assert_eq!(
        store.contact_checks(&numbers(&["222"]), secs(1_000)).await.unwrap(),
        [check("222", true, 2_000)]
    );

    // Recording forgets everything too old to be used again.
    store.record_contact_checks(&[check("333", true, 3_000)], secs(1_999)).await.unwrap();
    let mut all = store.contact_checks(&numbers(&["111", "222", "333"]), secs(0)).await.unwrap();
    all.sort_by(|a, b| a.number.cmp(&b.number));
    assert_eq!(all, [check("222", true, 2_000), check("333", true, 3_000)]);
}

/// An idempotency key keeps the first answer until it expires: a sent message's key is
/// stored by the statement that stores the message, so a message whose key is taken is not
/// stored (whether the key was taken before or earlier in the same batch); other answers are
/// kept only if the key is free.
async fn idempotency_keys(store: Arc<dyn Store>) {
    use premise_store::{Credential, KeptAnswer};
    let answer = |key: &str, fingerprint: &str, body: &str, expires_at: i64| KeptAnswer {
        key: key.to_owned(),
        fingerprint: fingerprint.to_owned(),
        status: 201,
        body: body.as_bytes().to_vec(),
        expires_at: secs(expires_at),
    };
    // Messages accepted at 1_001..1_009 ms: "now" is second 1.
    let keyed = |n: u32, key: &str, fingerprint: &str| premise_store::NewMessage {
        idempotency: Some(answer(key, fingerprint, &format!("m{n}"), 100)),
        ..message(n, 7)
    };
    let stored = |e: &premise_store::Enqueued| -> Vec<String> {
        e.messages.iter().map(|p| p.message.id.clone()).collect()
    };

    let first =
        store.enqueue(&[keyed(1, "k1", "a"), keyed(2, "k2", "b"), keyed(3, "k1", "a")]).await;
    let first = first.unwrap();
    assert_eq!(stored(&first), ["m1", "m2"], "the key's second use in the batch is not stored");
    assert_eq!(first.refused, ["m3"]);
    assert_eq!(store.kept_answer("k1", secs(1)).await.unwrap(), Some(answer("k1", "a", "m1", 100)));
    assert_eq!(store.kept_answer("k2", secs(1)).await.unwrap(), Some(answer("k2", "b", "m2", 100)));
    assert_eq!(store.kept_answer("k9", secs(1)).await.unwrap(), None);

    // Taken by an earlier batch: not stored, whatever the body; the first answer stays.
    let again = store.enqueue(&[keyed(4, "k1", "a"), keyed(5, "k1", "z"), message(6, 7)]).await;
    let again = again.unwrap();
    assert_eq!(stored(&again), ["m6"]);
    assert_eq!(again.refused, ["m4", "m5"]);
    assert_eq!(store.kept_answer("k1", secs(1)).await.unwrap(), Some(answer("k1", "a", "m1", 100)));

    // A refused credential stores neither the message nor its key.
    let revoked = Credential { username: "x".into(), user_id: "id-x".into(), jti: "j".into() };
    let refused = premise_store::NewMessage { credential: Some(revoked), ..keyed(7, "k7", "a") };
    assert_eq!(store.enqueue(&[refused]).await.unwrap().refused, ["m7"]);
    assert_eq!(store.kept_answer("k7", secs(1)).await.unwrap(), None);

    // Other answers are kept only on a free key.
    assert!(!store.keep_answer(&answer("k1", "c", "400", 200), secs(1)).await.unwrap(), "k1 held");
    assert!(store.keep_answer(&answer("k8", "c", "400", 200), secs(1)).await.unwrap());
    assert_eq!(
        store.kept_answer("k8", secs(150)).await.unwrap(),
        Some(answer("k8", "c", "400", 200))
    );

    // At `expires_at` a key is free again, for any body: read as absent, replaced when used.
    assert_eq!(store.kept_answer("k1", secs(100)).await.unwrap(), None);
    assert!(store.keep_answer(&answer("k2", "d", "400", 300), secs(100)).await.unwrap());
    let later = premise_store::NewMessage {
        accepted_at: ms(100_000),
        idempotency: Some(answer("k1", "e", "m8", 500)),
        ..message(8, 7)
    };
    assert_eq!(stored(&store.enqueue(&[later]).await.unwrap()), ["m8"]);
    assert_eq!(
        store.kept_answer("k1", secs(100)).await.unwrap(),
        Some(answer("k1", "e", "m8", 500))
    );
}

/// The Cloud webhook journal: one row per body however often it is delivered, marked processed
/// with what was not mapped, listed newest first, deleted by retention once processed.
async fn webhook_journal(store: Arc<dyn Store>) {
    let journaled = store.journal_webhook("d1", b"{\"a\":1}", ms(1_000)).await.unwrap();
    let (first, processed) = (journaled.id, journaled.processed);
    assert!(!processed);
    assert_eq!(
        store.journal_webhook("d1", b"{\"a\":1}", ms(2_000)).await.unwrap(),
        Journaled { id: first, processed: false }
    );
    let second = store.journal_webhook("d2", b"{}", ms(1_500)).await.unwrap().id;
    assert_ne!(first, second);
    store.webhook_processed(first, None, ms(1_100)).await.unwrap();
    assert_eq!(
        store.journal_webhook("d1", b"{\"a\":1}", ms(3_000)).await.unwrap(),
        Journaled { id: first, processed: true }
    );
    store.webhook_processed(second, Some(r#"[{"why":"x"}]"#), ms(1_600)).await.unwrap();
    let unmapped = store.unmapped_webhooks(10).await.unwrap();
    assert_eq!(unmapped.len(), 1);
    assert_eq!((unmapped[0].id, unmapped[0].processed_at), (second, Some(ms(1_600))));
    assert_eq!(unmapped[0].unmapped, r#"[{"why":"x"}]"#);
    assert_eq!(store.journaled_body(second).await.unwrap(), Some(b"{}".to_vec()));
    assert_eq!(store.journaled_body(-1).await.unwrap(), None);
    assert_eq!(store.unprocessed_webhooks(ms(9_999), 10).await.unwrap(), Vec::<i64>::new());
    assert!(store.webhook_is_processed(second).await.unwrap());
    let third = store.journal_webhook("d3", b"{}", ms(1_700)).await.unwrap().id;
    assert_eq!(store.unprocessed_webhooks(ms(1_699), 10).await.unwrap(), Vec::<i64>::new());
    assert_eq!(store.unprocessed_webhooks(ms(1_700), 10).await.unwrap(), [third]);
    assert!(!store.webhook_is_processed(third).await.unwrap());
    store.purge_inbound(ms(1_600), 100).await.unwrap();
    assert!(store.unmapped_webhooks(10).await.unwrap().is_empty(), "processed: purged");
    assert_eq!(
        store.journal_webhook("d3", b"{}", ms(9_000)).await.unwrap(),
        Journaled { id: third, processed: false },
        "kept"
    );
}

/// Customers by business-scoped user id: what is given replaces what is kept, what is not given
/// stays; a number learnt under a new user id moves to it and the move is reported; a renamed
/// user id keeps what was known.
async fn customers(store: Arc<dyn Store>) {
    let ann = KnownCustomer {
        user_id: "US.1".into(),
        wa_id: Some("16315551234".into()),
        username: Some("ann".into()),
        profile_name: Some("Ann".into()),
        ..KnownCustomer::default()
    };
    assert!(store.learn_customers(std::slice::from_ref(&ann), ms(1_000)).await.unwrap().is_empty());
    let again = KnownCustomer { user_id: "US.1".into(), ..KnownCustomer::default() };
    assert!(store.learn_customers(&[again], ms(1_100)).await.unwrap().is_empty());
    assert_eq!(store.customer("16315551234").await.unwrap(), Some(ann.clone()));
    assert_eq!(store.customer("US.1").await.unwrap(), Some(ann.clone()));
    // The same number under a new BSUID: the customer moved.
    let new = KnownCustomer {
        user_id: "US.9".into(),
        wa_id: Some("16315551234".into()),
        ..KnownCustomer::default()
    };
    let moved = store.learn_customers(std::slice::from_ref(&new), ms(1_200)).await.unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!((&moved[0].previous, &moved[0].current), (&ann, &new));
    assert_eq!(store.customer("16315551234").await.unwrap().unwrap().user_id, "US.9");
    assert_eq!(store.customer("US.1").await.unwrap().unwrap().wa_id, None, "the number moved");
    // Renamed by Meta: what was known follows.
    let bo = KnownCustomer {
        user_id: "US.20".into(),
        username: Some("bo".into()),
        parent_user_id: Some("US.ENT.7".into()),
        profile_name: Some("Bo".into()),
        wa_id: None,
    };
    store.learn_customers(std::slice::from_ref(&bo), ms(1_300)).await.unwrap();
    let current = KnownCustomer { user_id: "US.21".into(), ..KnownCustomer::default() };
    let before = store.customer_renamed("US.20", &current, ms(1_400)).await.unwrap();
    assert_eq!(before, Some(bo));
    let now = store.customer("US.21").await.unwrap().unwrap();
    assert_eq!(
        (now.username.as_deref(), now.parent_user_id.as_deref(), now.profile_name.as_deref()),
        (Some("bo"), Some("US.ENT.7"), Some("Bo"))
    );
    // A new profile name replaces the one kept.
    let renamed = KnownCustomer { profile_name: Some("Bo B.".into()), ..now.clone() };
    store.learn_customers(std::slice::from_ref(&renamed), ms(1_450)).await.unwrap();
    assert_eq!(store.customer("US.21").await.unwrap(), Some(renamed));
    assert_eq!(store.customer("US.20").await.unwrap(), None);
    assert_eq!(store.customer_renamed("US.404", &current, ms(1_500)).await.unwrap(), None);
    // A webhook's worth at once (more than one statement's chunk): the same customer twice is
    // merged, and a number held by another is moved and reported.
    let mut many: Vec<KnownCustomer> = (0..150)
        .map(|n| KnownCustomer {
            user_id: format!("US.M{n}"),
            wa_id: Some(format!("1631600{n:04}")),
            ..KnownCustomer::default()
        })
        .collect();
    many.push(KnownCustomer {
        user_id: "US.M7".into(),
        username: Some("seven".into()),
        ..KnownCustomer::default()
    });
    many.push(KnownCustomer {
        user_id: "US.M200".into(),
        wa_id: Some("16315551234".into()),
        ..KnownCustomer::default()
    });
    let moved = store.learn_customers(&many, ms(1_600)).await.unwrap();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(
        (moved[0].previous.user_id.as_str(), moved[0].current.user_id.as_str()),
        ("US.9", "US.M200")
    );
    let seven = store.customer("US.M7").await.unwrap().unwrap();
    assert_eq!(
        (seven.wa_id.as_deref(), seven.username.as_deref()),
        (Some("16316000007"), Some("seven"))
    );
    assert_eq!(store.customer("16316000149").await.unwrap().unwrap().user_id, "US.M149");
    assert_eq!(store.customer("16315551234").await.unwrap().unwrap().user_id, "US.M200");
}

/// An injected inbound message is stored and its webhook queued on the sender's shard (moved
/// with the shard count like status callbacks), once; the sandbox's templates are kept by name
/// and language.
async fn inbound_webhooks_and_sandbox_templates(store: Arc<dyn Store>) {
    store.set_shards(4).await.unwrap();
    let inbound = |id: &str| premise_store::NewInbound {
        id: id.into(),
        from: Routed::new("16505550107"),
        received_at: ms(1_000),
        payload: r#"{"from":"16505550107"}"#.into(),
        webhook: r#"{"contacts":[],"messages":[]}"#.into(),
    };
    assert!(store.receive_inbound(&inbound("ABG1")).await.unwrap());
    assert!(store.receive_inbound(&inbound("ABG2")).await.unwrap());
    assert!(!store.receive_inbound(&inbound("ABG1")).await.unwrap(), "once");
    assert!(store.inbound("ABG1").await.unwrap().is_some());
    let shard = |shards: u32| Routed::new("16505550107").crc() % shards;
    let pending = store.pending_callbacks(&[shard(4)], 10).await.unwrap();
    assert_eq!(pending.len(), 2, "{pending:?}");
    assert!(pending.iter().all(|c| c.inbound && c.message_id == "inbound:16505550107"));
    assert_eq!(pending[0].body, r#"{"contacts":[],"messages":[]}"#);
    store.set_shards(2).await.unwrap();
    assert_eq!(store.pending_callbacks(&[shard(2)], 10).await.unwrap().len(), 2);

    assert!(store.sandbox_templates().await.unwrap().is_empty());
    assert!(store.put_sandbox_template("hello", "en", "{\"v\":1}", false).await.unwrap());
    assert!(!store.put_sandbox_template("hello", "en", "{\"v\":2}", false).await.unwrap(), "kept");
    assert!(store.put_sandbox_template("hello", "en", "{\"v\":3}", true).await.unwrap());
    assert!(store.put_sandbox_template("bye", "en", "{\"v\":4}", false).await.unwrap());
    assert_eq!(store.sandbox_templates().await.unwrap(), ["{\"v\":4}", "{\"v\":3}"]);
    assert!(store.delete_sandbox_template("hello", "en").await.unwrap());
    assert!(!store.delete_sandbox_template("hello", "en").await.unwrap());

    assert_eq!(store.sandbox_clock_offset().await.unwrap(), 0);
    assert_eq!(store.move_sandbox_clock(86_400_000, false).await.unwrap(), 86_400_000);
    assert_eq!(store.move_sandbox_clock(-400_000, false).await.unwrap(), 86_000_000);
    assert_eq!(store.move_sandbox_clock(5, true).await.unwrap(), 5);
    assert_eq!(store.sandbox_clock_offset().await.unwrap(), 5);
    store.customer_wrote("1555", ms(2_000)).await.unwrap();
    store.customer_wrote("1555", ms(1_000)).await.unwrap();
    store.customer_wrote("1666", ms(500)).await.unwrap();
    assert_eq!(
        store.customer_windows(ms(1_000)).await.unwrap(),
        [premise_store::CustomerWindow { wa_id: "1555".to_owned(), wrote_at: ms(2_000) }],
        "the latest message counts; older windows are left out"
    );

    // Conversations: the open one is kept until it expires, whoever proposes another.
    let conversation = |id: &str, expires_ms| premise_store::SandboxConversation {
        id: id.into(),
        user_initiated: false,
        expires: ms(expires_ms),
    };
    let first = open_one(&store, "1555", &conversation("c1", 5_000), ms(1_000)).await.unwrap();
    assert_eq!(first, conversation("c1", 5_000));
    let other = open_one(&store, "1555", &conversation("c2", 6_000), ms(4_999)).await.unwrap();
    assert_eq!(other, first, "open: another replica's proposal loses");
    let next = open_one(&store, "1555", &conversation("c3", 9_000), ms(5_000)).await.unwrap();
    assert_eq!(next, conversation("c3", 9_000), "expired: replaced");
    assert_eq!(
        open_one(&store, "1666", &conversation("c4", 9_000), ms(5_000)).await.unwrap().id,
        "c4",
        "per customer"
    );
    // Several in one write: each customer's open one kept, new ones stored, a customer named
    // twice gets its first candidate.
    let openings = [
        opening("1555", conversation("c5", 12_000)),
        opening("1777", conversation("c6", 12_000)),
        opening("1777", conversation("c7", 13_000)),
        opening("1666", conversation("c8", 12_000)),
    ];
    let open = store.open_conversations(&openings, ms(8_000)).await.unwrap();
    let ids = |wa_id: &str| open.get(wa_id).map(|c| c.id.as_str());
    assert_eq!(open.len(), 3);
    assert_eq!((ids("1555"), ids("1777"), ids("1666")), (Some("c3"), Some("c6"), Some("c4")));
    let expired = [opening("1555", conversation("c10", 19_000))];
    let open = store.open_conversations(&expired, ms(9_000)).await.unwrap();
    assert_eq!(open["1555"].id, "c10", "c3 expired at 9,000: replaced");
    let again = open_one(&store, "1777", &conversation("c9", 20_000), ms(11_000)).await.unwrap();
    assert_eq!(again.id, "c6", "stored");
}

async fn cloud_media(store: Arc<dyn Store>) {
    assert_eq!(store.cloud_media("m-1").await.unwrap(), None);
    store.put_cloud_media("m-1", &cloud("111", 1_000)).await.unwrap();
    assert_eq!(store.cloud_media("m-1").await.unwrap(), Some(cloud("111", 1_000)));
    store.put_cloud_media("m-1", &cloud("222", 2_000)).await.unwrap();
    assert_eq!(store.cloud_media("m-1").await.unwrap(), Some(cloud("222", 2_000)), "replaced");
    store.forget_cloud_media("m-1", "111").await.unwrap();
    assert_eq!(
        store.cloud_media("m-1").await.unwrap(),
        Some(cloud("222", 2_000)),
        "forgetting an older id keeps the newer"
    );
    store.forget_cloud_media("m-1", "222").await.unwrap();
    assert_eq!(store.cloud_media("m-1").await.unwrap(), None);

    // Deleting the upload forgets its Cloud id.
    assert!(store.begin_media("m-2", "image/png", secs(1_000)).await.unwrap());
    assert!(store.finish_media("m-2", 0, 0, "e3b0").await.unwrap());
    store.put_cloud_media("m-2", &cloud("333", 1_000)).await.unwrap();
    assert!(store.delete_media("m-2").await.unwrap());
    assert_eq!(store.cloud_media("m-2").await.unwrap(), None);
}

/// What the console reads: pages of messages newest first, filtered by recipient, status and
/// either id; messages by id; a waiting callback made due at once.
async fn browse(store: Arc<dyn Store>) {
    use premise_store::{MessagePage, NewCallback, StatusPlan};
    let batch: Vec<_> = (1..=5).map(|n| message(n, n % 2)).collect();
    let enqueued = store.enqueue(&batch).await.unwrap();
    let seqs: Vec<i64> = enqueued.messages.iter().map(|p| p.message.seq).collect();
    // m2 and m4 sent, with their Cloud ids and a callback each.
    let sent = |states: Vec<premise_store::MessageState>| StatusPlan {
        updates: states.iter().map(|s| status_update(&s.id, MessageStatus::Sent)).collect(),
        callbacks: states
            .iter()
            .map(|s| NewCallback {
                shard: s.shard,
                recipient_crc: s.recipient.crc(),
                message_id: s.id.clone(),
                message_seq: s.seq,
                status: MessageStatus::Sent,
                body: "{}".into(),
            })
            .collect(),
        upstream_ids: states
            .iter()
            .map(|s| upstream_id(&s.id, &format!("wamid.{}", s.id)))
            .collect(),
    };
    store.record_statuses(&["m2".into(), "m4".into()], ms(9_000), &sent).await.unwrap();
    let ids = |page: Vec<premise_store::MessageSummary>| {
        page.into_iter().map(|m| m.id).collect::<Vec<_>>()
    };
    let page = |limit| MessagePage { limit, ..MessagePage::default() };
    assert_eq!(ids(store.messages_page(&page(3)).await.unwrap()), ["m5", "m4", "m3"]);
    let next = MessagePage { before_seq: Some(seqs[2]), ..page(3) };
    assert_eq!(ids(store.messages_page(&next).await.unwrap()), ["m2", "m1"], "the next page");
    let to = batch[0].recipient.as_str().to_owned();
    let theirs = MessagePage { recipient: Some(to), ..page(10) };
    assert_eq!(ids(store.messages_page(&theirs).await.unwrap()), ["m5", "m3", "m1"]);
    let sent_only = MessagePage { status: Some(MessageStatus::Sent), ..page(10) };
    let found = store.messages_page(&sent_only).await.unwrap();
    assert_eq!(ids(found.clone()), ["m4", "m2"]);
    assert_eq!(found[0].upstream_id.as_deref(), Some("wamid.m4"));
    assert_eq!((found[0].accepted_at, found[0].updated_at), (ms(1_004), ms(9_000)));
    for id in ["m2", "wamid.m2"] {
        let by_id = MessagePage { id: Some(id.into()), ..page(10) };
        assert_eq!(ids(store.messages_page(&by_id).await.unwrap()), ["m2"], "{id}");
    }
    let by_time = MessagePage { accepted_by: Some(ms(1_003)), ..page(10) };
    assert_eq!(ids(store.messages_page(&by_time).await.unwrap()), ["m3", "m2", "m1"]);
    let mut some =
        ids(store.message_summaries(&["m3".into(), "m1".into(), "nope".into()]).await.unwrap());
    some.sort();
    assert_eq!(some, ["m1", "m3"]);
    // Retry now: due at once, its failure count kept; a callback gone answers false.
    let account = store.account().await.unwrap();
    let all: Vec<u32> = (0..account.shards).collect();
    let waiting = store.pending_callbacks(&all, 10).await.unwrap();
    refused(&store, &[waiting[0].seq], 9_000, 99_000).await;
    assert!(store.retry_callback(waiting[0].seq, ms(10_000)).await.unwrap());
    let again = store.pending_callbacks(&all, 10).await.unwrap();
    assert_eq!((again[0].failures, again[0].next_attempt_at), (1, ms(10_000)));
    delivered(&store, &[waiting[0].seq], 10_000).await;
    assert!(!store.retry_callback(waiting[0].seq, ms(10_000)).await.unwrap());

    // A message's history: each status at the time it was reached, kept when later ones come;
    // a failure's errors.
    let update = |id: &str, reached: Vec<(MessageStatus, i64)>, errors: Option<&str>| {
        let reached: Vec<_> = reached.into_iter().map(|(s, at)| (s, ms(at))).collect();
        premise_store::StatusUpdate {
            message_id: id.to_owned(),
            status: reached.last().expect("a status").0,
            reached,
            errors: errors.map(str::to_owned),
        }
    };
    let (delivered_then, read_then) = (
        update("m2", vec![(MessageStatus::Delivered, 11_000)], None),
        update("m4", vec![(MessageStatus::Delivered, 11_500), (MessageStatus::Read, 11_500)], None),
    );
    let plan = move |_: Vec<premise_store::MessageState>| StatusPlan {
        updates: vec![delivered_then.clone(), read_then.clone()],
        ..StatusPlan::default()
    };
    store.record_statuses(&["m2".into(), "m4".into()], ms(12_000), &plan).await.unwrap();
    let errors = r#"[{"code":131026,"title":"Message undeliverable"}]"#;
    let failed = update("m1", vec![(MessageStatus::Failed, 13_000)], Some(errors));
    let plan = move |_: Vec<premise_store::MessageState>| StatusPlan {
        updates: vec![failed.clone()],
        ..StatusPlan::default()
    };
    store.record_statuses(&["m1".into()], ms(13_000), &plan).await.unwrap();
    let history = |id: &str| {
        let (store, id) = (store.clone(), id.to_owned());
        async move { store.message_history(&id).await.unwrap().unwrap() }
    };
    let m4 = history("m4").await;
    assert_eq!(
        m4.reached,
        [
            (MessageStatus::Sent, ms(4_000)),
            (MessageStatus::Delivered, ms(11_500)),
            (MessageStatus::Read, ms(11_500))
        ]
    );
    let attempted = &waiting[0].message_id;
    assert_eq!(history(attempted).await.attempts.len(), 2, "refused, then delivered");
    let other = if attempted == "m2" { "m4" } else { "m2" };
    assert_eq!(history(other).await.attempts.len(), 0, "its callback was never attempted");
    let m1 = history("m1").await;
    assert_eq!(
        (m1.reached, m1.errors.as_deref()),
        (vec![(MessageStatus::Failed, ms(13_000))], Some(errors))
    );
    assert_eq!(history("m3").await, premise_store::MessageHistory::default(), "still queued");

    // Customers' messages, newest first, by sender, before a time.
    for (id, from, at) in [("a1", "1555", 1_000), ("b1", "1666", 2_000), ("a2", "1555", 3_000)] {
        assert!(store.insert_inbound(id, from, ms(at), "{}").await.unwrap());
    }
    let inbound = |from, before, limit| {
        let store = store.clone();
        async move {
            let page = store.inbound_page(from, before, limit).await.unwrap();
            page.into_iter().map(|m| m.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(inbound(None, None, 10).await, ["a2", "b1", "a1"]);
    assert_eq!(inbound(Some("1555"), None, 10).await, ["a2", "a1"]);
    assert_eq!(inbound(None, Some(ms(3_000)), 1).await, ["b1"]);
}

/// Retention: what is finished goes, in batches; what something still waits for stays.
async fn retention(store: Arc<dyn Store>) {
    use premise_store::{Expired, NewCallback, StatusPlan};
    // Jobs: one owner at a time, until the lease runs out.
    assert!(store.hold_job("retention", "a", ms(1_000), Duration::from_millis(500)).await.unwrap());
    assert!(
        !store.hold_job("retention", "b", ms(1_200), Duration::from_millis(500)).await.unwrap(),
        "held by a"
    );
    assert!(
        store.hold_job("retention", "a", ms(1_400), Duration::from_millis(500)).await.unwrap(),
        "renewed"
    );
    assert!(
        !store.hold_job("retention", "b", ms(1_899), Duration::from_millis(500)).await.unwrap()
    );
    assert!(
        store.hold_job("retention", "b", ms(1_900), Duration::from_millis(500)).await.unwrap(),
        "expired: taken"
    );
    assert!(
        store.hold_job("other", "a", ms(1_900), Duration::from_millis(500)).await.unwrap(),
        "jobs are separate"
    );

    // Messages: m1 read with its callback still waiting, m2 failed earlier, m3 sent, m4
    // delivered later, m5 queued, m6 read later.
    let enqueued =
        store.enqueue(&(1..=6).map(|n| message(n, 5)).collect::<Vec<_>>()).await.unwrap();
    let seq = |id: &str| {
        enqueued
            .messages
            .iter()
            .find(|p| p.message.id == id)
            .map(|p| p.message.seq)
            .expect("enqueued")
    };
    let set = |id: &'static str, status: MessageStatus, callback: bool, now_ms: i64| {
        let store = store.clone();
        async move {
            let plan = move |states: Vec<premise_store::MessageState>| StatusPlan {
                updates: states.iter().map(|s| status_update(&s.id, status)).collect(),
                callbacks: states
                    .iter()
                    .filter(|_| callback)
                    .map(|s| NewCallback {
                        shard: s.shard,
                        recipient_crc: s.recipient.crc(),
                        message_id: s.id.clone(),
                        message_seq: s.seq,
                        status: MessageStatus::Sent,
                        body: "{}".into(),
                    })
                    .collect(),
                upstream_ids: Vec::new(),
            };
            store.record_statuses(&[id.to_owned()], ms(now_ms), &plan).await.unwrap();
        }
    };
    set("m2", MessageStatus::Failed, false, 5_000).await;
    set("m1", MessageStatus::Read, true, 10_000).await;
    set("m3", MessageStatus::Sent, false, 10_000).await;
    set("m6", MessageStatus::Read, false, 20_000).await;
    set("m4", MessageStatus::Delivered, false, 50_000).await;
    let exists = |id: &'static str| {
        let store = store.clone();
        async move { store.message(id).await.unwrap().is_some() }
    };
    // A walk from `after`, up to messages accepted at `through`, with its two cutoffs.
    let walk = |after_seq, accepted_through, finished_before, unconfirmed_before| {
        premise_store::MessagePurge {
            after_seq,
            accepted_through: ms(accepted_through),
            finished_before: ms(finished_before),
            unconfirmed_before: ms(unconfirmed_before),
            recent_after: ms(1_004),
        }
    };
    let page = store.purge_messages(&walk(0, i64::MAX, 30_000, 30_000), 100).await.unwrap();
    assert_eq!(
        page.deleted, 1,
        "only m2: the others changed since m1's callback was written, which still waits"
    );
    assert_eq!((page.through_seq, page.more), (seq("m6"), false), "all examined");
    assert_eq!(page.first_kept_seq, Some(seq("m1")), "owed a callback: to be looked at again");
    assert!(!exists("m2").await && exists("m1").await && exists("m6").await);
    let waiting = store.pending_callbacks(&[0], 10).await.unwrap();
    assert!(!waiting.is_empty());
    delivered(&store, &waiting.iter().map(|c| c.seq).collect::<Vec<_>>(), 1_000).await;
    let attempts = || {
        let store = store.clone();
        async move {
            let counts = store.row_counts().await.unwrap();
            counts.iter().find(|t| t.table == "callback_attempts").map(|t| t.rows)
        }
    };
    assert_eq!(attempts().await, Some(waiting.len() as i64), "m1's attempt logged");

    // Page by page, in `seq` order: a full page says there may be more.
    let page = store.purge_messages(&walk(0, i64::MAX, 30_000, 0), 1).await.unwrap();
    assert_eq!((page.deleted, page.through_seq, page.more), (1, seq("m1"), true));
    assert_eq!(page.first_kept_seq, None);
    assert!(!exists("m1").await, "the oldest first");
    assert_eq!(attempts().await, Some(0), "with its delivery attempts");
    let page = store.purge_messages(&walk(seq("m1"), i64::MAX, 30_000, 0), 2).await.unwrap();
    assert_eq!((page.deleted, page.through_seq, page.more), (0, seq("m4"), true), "m3, m4 kept");
    assert_eq!(page.first_kept_seq, None, "not confirmed: left to the offline window");
    let recent = premise_store::MessagePurge {
        recent_after: ms(1_002),
        ..walk(seq("m1"), i64::MAX, 30_000, 0)
    };
    let page = store.purge_messages(&recent, 2).await.unwrap();
    assert_eq!(page.first_kept_seq, Some(seq("m3")), "sent recently: may be read soon");
    // The walk stops at the first message accepted after its bound (m6, at 1,006).
    let page = store.purge_messages(&walk(seq("m4"), 1_005, 30_000, 0), 100).await.unwrap();
    assert_eq!((page.deleted, page.through_seq, page.more), (0, seq("m5"), false));
    assert_eq!(page.first_kept_seq, Some(seq("m5")), "queued");
    assert!(exists("m6").await, "accepted after the walk's bound");
    let page = store.purge_messages(&walk(seq("m4"), i64::MAX, 30_000, 0), 100).await.unwrap();
    assert_eq!(page.deleted, 1, "m6");
    assert!(exists("m3").await, "sent: kept while unconfirmed ones are kept");
    let unconfirmed = |before| walk(0, i64::MAX, 30_000, before);
    assert_eq!(store.purge_messages(&unconfirmed(9_999), 100).await.unwrap().deleted, 0);
    assert_eq!(store.purge_messages(&unconfirmed(30_000), 100).await.unwrap().deleted, 1, "m3");
    assert!(exists("m4").await, "delivered after the cutoff");
    assert!(exists("m5").await, "queued: never");
    let all = walk(0, i64::MAX, i64::MAX - 1, i64::MAX - 1);
    assert_eq!(store.purge_messages(&all, 100).await.unwrap().deleted, 1, "m4");
    assert!(exists("m5").await, "queued: never, however old");
    let nothing = store.purge_messages(&walk(seq("m6"), i64::MAX, 0, 0), 100).await.unwrap();
    assert_eq!((nothing.deleted, nothing.through_seq, nothing.more), (0, seq("m6"), false));

    // Customers' messages: kept until their webhook was delivered.
    let inbound = premise_store::NewInbound {
        id: "ABG1".into(),
        from: Routed::new("16505550107"),
        received_at: ms(1_000),
        payload: "{}".into(),
        webhook: "{}".into(),
    };
    assert!(store.receive_inbound(&inbound).await.unwrap());
    assert!(store.insert_inbound("ABG0", "16505550107", ms(500), "{}").await.unwrap());
    assert!(store.insert_inbound("ABG2", "16505550107", ms(9_000), "{}").await.unwrap());
    assert_eq!(store.purge_inbound(ms(5_000), 100).await.unwrap(), 1, "ABG0; ABG1's webhook waits");
    assert!(store.inbound("ABG0").await.unwrap().is_none());
    let waiting = store.pending_callbacks(&[0], 10).await.unwrap();
    delivered(&store, &waiting.iter().map(|c| c.seq).collect::<Vec<_>>(), 1_000).await;
    assert_eq!(store.purge_inbound(ms(5_000), 100).await.unwrap(), 1);
    assert!(store.inbound("ABG1").await.unwrap().is_none());
    assert!(store.inbound("ABG2").await.unwrap().is_some(), "received after the cutoff");

    // Media: finished uploads older than the cutoff, with their chunks and Cloud ids.
    for (id, at) in [("old", 100), ("older", 50), ("new", 300)] {
        assert!(store.begin_media(id, "image/png", secs(at)).await.unwrap());
        store.put_media_chunk(id, 0, b"png").await.unwrap();
        assert!(store.finish_media(id, 3, 1, "h").await.unwrap());
    }
    store.put_cloud_media("old", &cloud("cloud-1", 100)).await.unwrap();
    assert!(store.begin_media("uploading", "image/png", secs(10)).await.unwrap());
    assert_eq!(store.purge_media(secs(200), 1).await.unwrap(), 1, "one at a time");
    assert!(store.media("older").await.unwrap().is_none(), "the oldest first");
    assert_eq!(store.purge_media(secs(200), 10).await.unwrap(), 1);
    assert_eq!(store.media_chunk("old", 0).await.unwrap(), None);
    assert_eq!(store.cloud_media("old").await.unwrap(), None);
    assert!(store.media("new").await.unwrap().is_some());
    assert!(store.finish_media("uploading", 0, 0, "h").await.unwrap(), "uploads carry on");

    // What expires by itself.
    store
        .record_contact_checks(
            &[premise_store::ContactCheck {
                number: "+1 555".into(),
                wa_id: Some("1555".into()),
                checked_at: secs(100),
            }],
            secs(0),
        )
        .await
        .unwrap();
    let answer = premise_store::KeptAnswer {
        key: "k".into(),
        fingerprint: "f".into(),
        status: 400,
        body: b"{}".to_vec(),
        expires_at: secs(200),
    };
    assert!(store.keep_answer(&answer, secs(100)).await.unwrap());
    store.revoke_token("jti", secs(300), secs(100)).await.unwrap();
    store.record_login_failure("10.0.0.1", secs(400), Duration::from_secs(60)).await.unwrap();
    store.customer_wrote("1555", ms(500)).await.unwrap();
    let conversation = premise_store::SandboxConversation {
        id: "c".into(),
        user_initiated: true,
        expires: ms(500),
    };
    open_one(&store, "1555", &conversation, ms(0)).await.unwrap();
    let expired = Expired {
        now: secs(199),
        contacts_before: secs(99),
        logins_before: secs(399),
        windows_before: ms(500),
    };
    assert_eq!(store.purge_expired(&expired, 100).await.unwrap(), 0, "nothing yet");
    let expired = Expired {
        now: secs(301),
        contacts_before: secs(100),
        logins_before: secs(400),
        windows_before: ms(501),
    };
    assert_eq!(store.purge_expired(&expired, 100).await.unwrap(), 6, "each of the six");
    assert!(store.contact_checks(&["+1 555".into()], secs(0)).await.unwrap().is_empty());
    assert!(store.customer_windows(ms(0)).await.unwrap().is_empty());
    assert_eq!(
        store.login_failures("10.0.0.1", secs(401), Duration::from_secs(60)).await.unwrap(),
        0
    );
}

async fn documents(store: Arc<dyn Store>) {
    assert_eq!(store.document("about").await.unwrap(), None);
    assert!(store.replace_document("about", None, "{\"text\":\"a\"}").await.unwrap());
    assert!(!store.replace_document("about", None, "{}").await.unwrap(), "one exists now");
    assert!(!store.replace_document("about", Some("{}"), "{\"text\":\"b\"}").await.unwrap());
    assert!(
        store
            .replace_document("about", Some("{\"text\":\"a\"}"), "{\"text\":\"b\"}")
            .await
            .unwrap()
    );
    assert_eq!(store.document("about").await.unwrap().as_deref(), Some("{\"text\":\"b\"}"));
    assert_eq!(store.document("other").await.unwrap(), None, "by name");
    assert!(store.delete_document("about").await.unwrap());
    assert!(!store.delete_document("about").await.unwrap());
}

/// The open conversation of one customer, as `open_conversations` answers for it.
async fn open_one(
    store: &Arc<dyn Store>,
    wa_id: &str,
    candidate: &premise_store::SandboxConversation,
    now: UnixMs,
) -> Result<premise_store::SandboxConversation, premise_store::StoreError> {
    let mut open = store.open_conversations(&[opening(wa_id, candidate.clone())], now).await?;
    Ok(open.remove(wa_id).expect("the customer's conversation"))
}

fn opening(
    wa_id: &str,
    candidate: premise_store::SandboxConversation,
) -> premise_store::ConversationOpening {
    premise_store::ConversationOpening { wa_id: wa_id.to_owned(), candidate }
}

/// A Cloud media id uploaded at second `at`.
fn cloud(id: &str, at: i64) -> premise_store::CloudMedia {
    premise_store::CloudMedia { cloud_id: id.to_owned(), uploaded_at: secs(at) }
}
