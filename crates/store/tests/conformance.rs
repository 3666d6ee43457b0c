//! One storage story, run unchanged against SQLite and Postgres.

use std::sync::Arc;

use premise_store::{ConnectOptions, Store, TokenSubject, User, connect};
use premise_testkit::{TempDir, fresh_postgres_url};
use premise_wire::Role;

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

conformance!(migrations_are_idempotent_and_ready, users, tokens, login_failures, secrets);

fn user(name: &str, role: Role) -> User {
    User {
        id: format!("id-{name}"),
        username: name.to_owned(),
        password_hash: format!("hash-{name}"),
        role,
        must_change_password: role == Role::Admin,
        created_at: 1_700_000_000,
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

    assert!(store.set_password("alice", "new-hash", false).await.unwrap());
    let alice = store.user("alice").await.unwrap().unwrap();
    assert_eq!((alice.password_hash.as_str(), alice.must_change_password), ("new-hash", false));
    assert!(!store.set_password("nobody", "x", false).await.unwrap());

    assert!(store.delete_user("alice").await.unwrap());
    assert!(!store.delete_user("alice").await.unwrap());
    assert_eq!(store.user("alice").await.unwrap(), None);
}

async fn tokens(store: Arc<dyn Store>) {
    store.insert_user(&user("bob1", Role::User)).await.unwrap();
    let live = TokenSubject { user_id: "id-bob1".into(), role: Role::User, revoked: false };
    assert_eq!(store.token_subject("bob1", "jti-1").await.unwrap(), Some(live.clone()));
    assert_eq!(store.token_subject("ghost", "jti-1").await.unwrap(), None);

    store.revoke_token("jti-1", 2_000, 1_000).await.unwrap();
    store.revoke_token("jti-1", 2_000, 1_000).await.unwrap(); // twice is fine
    let revoked = store.token_subject("bob1", "jti-1").await.unwrap().unwrap();
    assert!(revoked.revoked);
    assert!(!store.token_subject("bob1", "jti-2").await.unwrap().unwrap().revoked);

    // A revocation is forgotten once its token has expired anyway.
    store.revoke_token("jti-3", 5_000, 3_000).await.unwrap();
    assert!(!store.token_subject("bob1", "jti-1").await.unwrap().unwrap().revoked);
    assert!(store.token_subject("bob1", "jti-3").await.unwrap().unwrap().revoked);
}

async fn login_failures(store: Arc<dyn Store>) {
    let window = 60;
    assert_eq!(store.login_failures("10.0.0.1", 1_000, window).await.unwrap(), 0);
    for expected in 1..=3 {
        assert_eq!(
            store.record_login_failure("10.0.0.1", 1_000 + expected, window).await.unwrap(),
            expected as u32
        );
    }
    assert_eq!(store.login_failures("10.0.0.1", 1_010, window).await.unwrap(), 3);
    assert_eq!(store.login_failures("10.0.0.2", 1_010, window).await.unwrap(), 0, "per client");
    // The window started at 1_001 and lasts 60 s.
    assert_eq!(store.login_failures("10.0.0.1", 1_061, window).await.unwrap(), 0);
    assert_eq!(
        store.record_login_failure("10.0.0.1", 1_061, window).await.unwrap(),
        1,
        "a new window"
    );
    store.clear_login_failures("10.0.0.1").await.unwrap();
    assert_eq!(store.login_failures("10.0.0.1", 1_062, window).await.unwrap(), 0);
}

async fn secrets(store: Arc<dyn Store>) {
    let first = store.secret_or_init("jwt", b"first").await.unwrap();
    assert_eq!(first, b"first");
    assert_eq!(store.secret_or_init("jwt", b"second").await.unwrap(), b"first");
    assert_eq!(store.secret_or_init("other", b"x").await.unwrap(), b"x");
}
