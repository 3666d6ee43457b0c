//! The storage interface every backend implements.

use std::time::Duration;

use async_trait::async_trait;
use premise_base::UnixMs;

use crate::model::{
    Account, CloudMedia, ConversationOpening, CustomerWindow, Document, Journaled, MediaInfo,
    MessageHistory, MessagePage, MessagePurge, MessageSummary, Node, PurgedPage,
    SandboxConversation, TableRows, UpstreamId,
};
use crate::{
    Backend, Backlog, ContactCheck, CustomerMoved, Enqueued, Health, InboundMessage,
    JournaledWebhook, KeptAnswer, KnownCustomer, Lease, MessageState, NewInbound, NewMessage,
    PendingCallback, QueueRead, Settled, ShardBacklog, StatusPlan, StoreError, StoredMessage,
    TokenSubject, Unfinished, User,
};

/// Decides, inside the recording transaction, what a batch of status events changes.
pub type PlanFn<'a> = &'a (dyn Fn(Vec<MessageState>) -> StatusPlan + Send + Sync);

/// All persistent state of Premise. Times cross as [`UnixMs`] (each backend keeps them in the
/// unit of its columns) and spans as [`Duration`]; the time is passed in by the caller, so the
/// rules that depend on it can be tested with any clock.
#[async_trait]
pub trait Store:
    Pipeline
    + Inbox
    + SandboxState
    + CloudBridge
    + WebhookJournal
    + Customers
    + Media
    + ContactCache
    + Idempotency
    + Retention
    + Documents
    + Inventory
    + Browse
    + Send
    + Sync
    + std::fmt::Debug
{
    fn backend(&self) -> Backend;

    /// What this process knows of the database's health.
    fn health(&self) -> &Health;

    /// Applies this backend's pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Whether the database answers and every migration this build knows has been applied.
    async fn ready(&self) -> Result<bool, StoreError>;

    /// Tries a write as large as a message's enqueue and leaves nothing behind: `Ok` when the
    /// database takes messages now. Used while it is known to be down (disk full, ...), to
    /// notice when it comes back.
    async fn probe(&self) -> Result<(), StoreError>;

    /// The secret called `name`. The first caller's `candidate` wins; every later caller, on
    /// any replica, gets that same value back.
    async fn secret_or_init(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError>;

    /// Creates the account; `false` if the username is taken (the existing account is kept).
    async fn insert_user(&self, user: &User) -> Result<bool, StoreError>;
    async fn user(&self, username: &str) -> Result<Option<User>, StoreError>;
    /// Replaces the password hash and the must-change flag, and gives the account `new_id`: a
    /// token names the account's id at login, so every token issued before the change stops
    /// holding at once, on every replica (as when an account is deleted and made anew).
    /// `false` if there is no such user.
    async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        must_change_password: bool,
        new_id: &str,
    ) -> Result<bool, StoreError>;
    /// `false` if there is no such user.
    async fn delete_user(&self, username: &str) -> Result<bool, StoreError>;

    /// Resolves a token's `sub` and `jti` in one round trip; `None` if the account is gone.
    async fn token_subject(
        &self,
        username: &str,
        jti: &str,
    ) -> Result<Option<TokenSubject>, StoreError>;
    /// Revokes a token until `expires_at`, and forgets revocations whose tokens expired by `now`.
    async fn revoke_token(
        &self,
        jti: &str,
        expires_at: UnixMs,
        now: UnixMs,
    ) -> Result<(), StoreError>;

    /// Counts a failed login by `client` in a fixed `window` (whole seconds) and returns the
    /// count in the current window.
    async fn record_login_failure(
        &self,
        client: &str,
        now: UnixMs,
        window: Duration,
    ) -> Result<u32, StoreError>;
    /// Failed logins by `client` in its current window (0 once the window has passed).
    async fn login_failures(
        &self,
        client: &str,
        now: UnixMs,
        window: Duration,
    ) -> Result<u32, StoreError>;
    async fn clear_login_failures(&self, client: &str) -> Result<(), StoreError>;

    /// Whether a finished upload with this id exists (what a message naming a media id needs).
    async fn media_exists(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.media(id).await?.is_some())
    }
}

/// The outbound pipeline's state: shard count, settings, the queue, the callback outbox, and
/// the leases that give each shard one owner across all replicas.
#[async_trait]
pub trait Pipeline: Send + Sync {
    // --- account and settings -----------------------------------------------------------

    async fn account(&self) -> Result<Account, StoreError>;
    /// Sets the shard count. On a change the generation goes up and queued messages and
    /// callbacks move to their new shards, in one transaction that enqueues wait for.
    async fn set_shards(&self, shards: u32) -> Result<Account, StoreError>;
    /// The `/v1/settings/application` document (JSON), if anything was ever set.
    async fn settings_document(&self) -> Result<Option<String>, StoreError>;
    async fn put_settings_document(&self, document: &str) -> Result<(), StoreError>;
    /// Replaces the settings document only if it is still `expected` (its text as read, `None`
    /// if there was none): `false` if another change came first, so a read-modify-write never
    /// loses a concurrent one's fields.
    async fn replace_settings_document(
        &self,
        expected: Option<&str>,
        document: &str,
    ) -> Result<bool, StoreError>;

    // --- the queue ----------------------------------------------------------------------

    /// Commits a batch of accepted messages in one transaction (group commit), each routed to
    /// `recipient_crc % shards` of the shard count current at commit. Enqueues are serialised,
    /// so `seq` order is commit order: a reader never sees a lower `seq` appear after a higher.
    /// The account keeps the last `seq` committed, so each batch knows what came before it.
    async fn enqueue(&self, batch: &[NewMessage]) -> Result<Enqueued, StoreError>;
    /// Queued messages of `shard` with `seq > after_seq` (and not below the shard's floor, see
    /// [`Pipeline::renew_lease`]), in acceptance order, at most `limit`, and how far
    /// that covers the shard; none once the account has moved past `generation`
    /// (a worker of an old shard count must not pick up rows just moved to it from another
    /// shard).
    async fn queued(
        &self,
        shard: u32,
        generation: i64,
        after_seq: i64,
        limit: u32,
    ) -> Result<QueueRead, StoreError>;
    /// The last `seq` committed (by any replica): a worker that has taken in its shard's
    /// messages up to it has nothing new to read.
    async fn committed_through(&self) -> Result<i64, StoreError>;
    async fn backlog(&self) -> Result<Backlog, StoreError>;
    /// The backlog of each shard that has any, by shard (for monitoring; not on a hot path).
    async fn shard_backlogs(&self) -> Result<Vec<ShardBacklog>, StoreError>;
    /// Reads the messages named by `ids` (locked), lets `plan` decide, writes the plan: status
    /// updates and new callbacks, atomically. Unknown ids are left out of the states.
    async fn record_statuses(
        &self,
        ids: &[String],
        now: UnixMs,
        plan: PlanFn<'_>,
    ) -> Result<(), StoreError>;
    /// Messages of `shard` that were sent but not yet read, oldest first. Walks all the
    /// shard's stored messages: for an upstream that resumes them when it takes a shard over
    /// (the sandbox), not a hot path.
    async fn unfinished(&self, shard: u32, limit: u32) -> Result<Vec<Unfinished>, StoreError>;
    /// A message's stored request and status.
    async fn message(&self, id: &str) -> Result<Option<StoredMessage>, StoreError>;

    // --- callbacks ----------------------------------------------------------------------

    /// The oldest callbacks of `shards` (one query for all the shards a process holds), in
    /// the order they were recorded.
    async fn pending_callbacks(
        &self,
        shards: &[u32],
        limit: u32,
    ) -> Result<Vec<PendingCallback>, StoreError>;
    /// Records what became of callbacks after their delivery attempts: each attempt logged
    /// for every callback it carried ([`Browse::message_history`]), and the callbacks deleted
    /// (delivered, or given up on) or, when to be tried again, their failure counted with why
    /// and when to try again. A callback gone meanwhile is left out.
    async fn settle_callbacks(&self, settled: &[Settled]) -> Result<(), StoreError>;

    // --- replicas and leases ------------------------------------------------------------

    /// Records that `node` is alive, with its figures (`stats`, JSON), and returns the nodes
    /// heard of within `alive_within` of this heartbeat with theirs.
    ///
    /// Heartbeats and leases are timed on the database's clock (`at` `None`), so replicas
    /// whose own clocks differ still agree on who is alive and whose lease ran out; a test on
    /// a driven clock passes its time instead.
    async fn heartbeat(
        &self,
        node: &str,
        at: Option<UnixMs>,
        alive_within: Duration,
        stats: &str,
    ) -> Result<Vec<Node>, StoreError>;
    /// The database's clock (to tell how far a replica's own clock is from it).
    async fn database_time(&self) -> Result<UnixMs, StoreError>;
    /// Removes `node` from the live replicas (graceful shutdown), so others rebalance at once.
    async fn leave(&self, node: &str) -> Result<(), StoreError>;
    /// Takes `shard` for `owner` until `ttl` from now (the database's clock, or `at`) if
    /// it is free or expired, the account is at `generation` and no lease of an older
    /// generation is still alive.
    async fn acquire_lease(
        &self,
        shard: u32,
        owner: &str,
        generation: i64,
        at: Option<UnixMs>,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError>;
    /// Extends a held lease to `ttl` from now (the database's clock, or `at`); `false`
    /// if it was lost (expired or taken). A lease of an old
    /// generation can still be renewed, so its worker can finish before handing it back.
    ///
    /// With it the holder records its shard's floor, `queue_floor`: no message of the shard
    /// below it is queued any more (the worker settled them all). No index names a message's
    /// status, so the queue is walked along the shard's messages in `seq` order: reads of the
    /// queue and of the backlog, and a later owner, start from the floor rather than at the
    /// shard's first message. It is only ever raised.
    async fn renew_lease(
        &self,
        lease: &Lease,
        owner: &str,
        at: Option<UnixMs>,
        ttl: Duration,
        queue_floor: i64,
    ) -> Result<bool, StoreError>;
    /// Hands the shard back at once, recording its floor (see [`Pipeline::renew_lease`]).
    async fn release_lease(
        &self,
        lease: &Lease,
        owner: &str,
        queue_floor: i64,
    ) -> Result<(), StoreError>;
}

/// Messages customers sent: stored when they arrive, marked read by the integration
/// (`PUT /v1/messages/{id}`, or the Cloud API's read receipt).
#[async_trait]
pub trait Inbox: Send + Sync {
    /// Stores an inbound message; `false` if one with this id is already stored (kept as is).
    async fn insert_inbound(
        &self,
        id: &str,
        from: &str,
        received_at: UnixMs,
        payload: &str,
    ) -> Result<bool, StoreError>;
    /// Stores an inbound message and queues its webhook on the sender's shard, in one
    /// transaction; `false` (and nothing queued) if one with this id is already stored.
    async fn receive_inbound(&self, inbound: &NewInbound) -> Result<bool, StoreError>;
    /// Marks the message read at `now` (the first time only); `false` if there is no such
    /// inbound message.
    async fn mark_inbound_read(&self, id: &str, now: UnixMs) -> Result<bool, StoreError>;
    async fn inbound(&self, id: &str) -> Result<Option<InboundMessage>, StoreError>;
}

/// Uploaded media, kept as ordered chunks so neither an upload nor a download ever holds a whole
/// file in memory. An upload is invisible until [`Media::finish_media`]; each chunk is its own
/// short write, so a slow client never keeps a transaction (or SQLite's one writer) busy.
#[async_trait]
pub trait Media: Send + Sync {
    /// Starts an upload: an unfinished row nobody can read yet. `false` if the id is taken.
    async fn begin_media(&self, id: &str, mime_type: &str, now: UnixMs)
    -> Result<bool, StoreError>;
    /// Writes chunk `index` (0, 1, 2, ...) of an unfinished upload.
    async fn put_media_chunk(&self, id: &str, index: u32, data: &[u8]) -> Result<(), StoreError>;
    /// Makes an upload visible with its size, chunk count and SHA-256 (hex), atomically.
    /// `false` if the upload is gone (deleted or purged meanwhile).
    async fn finish_media(
        &self,
        id: &str,
        size: u64,
        chunks: u32,
        sha256: &str,
    ) -> Result<bool, StoreError>;
    /// A finished upload; `None` for unknown or unfinished ids.
    async fn media(&self, id: &str) -> Result<Option<MediaInfo>, StoreError>;
    /// The bytes of chunk `index` of an upload; `None` past the end or once deleted.
    async fn media_chunk(&self, id: &str, index: u32) -> Result<Option<Vec<u8>>, StoreError>;
    /// Deletes an upload, finished or not, with its chunks; `false` if there was none.
    async fn delete_media(&self, id: &str) -> Result<bool, StoreError>;
    /// Deletes unfinished uploads begun before `started_before` (left by a client that went
    /// away or a replica that died mid-upload); returns how many.
    async fn purge_unfinished_media(&self, started_before: UnixMs) -> Result<u64, StoreError>;
}

/// The `/v1/contacts` cache: what checking a number found, reused until it is too old.
#[async_trait]
pub trait ContactCache: Send + Sync {
    /// The checks of `numbers` made after `fresh_after`; older ones and numbers never checked
    /// are left out.
    async fn contact_checks(
        &self,
        numbers: &[String],
        fresh_after: UnixMs,
    ) -> Result<Vec<ContactCheck>, StoreError>;
    /// Records checks (replacing earlier ones of the same numbers) and forgets every check made
    /// at or before `forget_before`.
    async fn record_contact_checks(
        &self,
        checks: &[ContactCheck],
        forget_before: UnixMs,
    ) -> Result<(), StoreError>;
}

/// `Idempotency-Key`s: a key holds the answer of the first request that carried it until it
/// expires, on every replica. A sent message's answer is kept by the statement that stores the
/// message ([`crate::NewMessage::idempotency`]); these keep and read the others.
#[async_trait]
pub trait Idempotency: Send + Sync {
    /// The answer kept for `key`, unless it expired by `now`.
    async fn kept_answer(&self, key: &str, now: UnixMs) -> Result<Option<KeptAnswer>, StoreError>;
    /// Keeps `answer` for its key unless the key already holds one not expired by `now`;
    /// whether it was kept.
    async fn keep_answer(&self, answer: &KeptAnswer, now: UnixMs) -> Result<bool, StoreError>;
}

/// The sandbox's shared state, so every replica emulates the same network: its template
/// registry (definitions, JSON, by name and language), its clock offset and when each customer
/// last wrote.
#[async_trait]
pub trait SandboxState: Send + Sync {
    /// Every definition, by name then language.
    async fn sandbox_templates(&self) -> Result<Vec<String>, StoreError>;
    /// Stores a definition, replacing one of the same name and language if `replace`; returns
    /// whether it was written.
    async fn put_sandbox_template(
        &self,
        name: &str,
        language: &str,
        definition: &str,
        replace: bool,
    ) -> Result<bool, StoreError>;
    /// `false` if there was no such template.
    async fn delete_sandbox_template(&self, name: &str, language: &str)
    -> Result<bool, StoreError>;

    /// The clock's offset from real time, ms.
    async fn sandbox_clock_offset(&self) -> Result<i64, StoreError>;
    /// Moves the clock by `delta_ms` (`set`: to `delta_ms` from real time); the new offset.
    async fn move_sandbox_clock(&self, delta_ms: i64, set: bool) -> Result<i64, StoreError>;
    /// `wa_id` wrote at `at` (sandbox time); an earlier time than the one kept is ignored.
    async fn customer_wrote(&self, wa_id: &str, at: UnixMs) -> Result<(), StoreError>;
    /// Customers who last wrote at or after `since`.
    async fn customer_windows(&self, since: UnixMs) -> Result<Vec<CustomerWindow>, StoreError>;
    /// The open conversation with each customer of `openings`, by `wa_id`: the stored one if
    /// it has not expired by `now`, otherwise the candidate, stored; one write for them all (a
    /// customer named twice gets its first candidate). Every replica bills in the same
    /// conversation.
    async fn open_conversations(
        &self,
        openings: &[ConversationOpening],
        now: UnixMs,
    ) -> Result<std::collections::HashMap<String, SandboxConversation>, StoreError>;
}

/// What the Cloud bridge keeps so that every replica shares it: the Cloud API's ids of sent
/// messages (written with their acknowledgement, see [`crate::StatusPlan::upstream_ids`]) and
/// the Cloud media ids of uploaded media.
#[async_trait]
pub trait CloudBridge: Send + Sync {
    /// The messages the upstream knows by these ids. Unknown ids are left out.
    async fn messages_by_upstream_id(
        &self,
        upstream_ids: &[String],
    ) -> Result<Vec<UpstreamId>, StoreError>;
    /// The upstream's ids of these messages of Premise's. Messages without one (not sent yet,
    /// or unknown) are left out.
    async fn upstream_ids_of(&self, message_ids: &[String]) -> Result<Vec<UpstreamId>, StoreError>;
    /// The Cloud media id of uploaded media `media_id` and when it was uploaded.
    async fn cloud_media(&self, media_id: &str) -> Result<Option<CloudMedia>, StoreError>;
    /// Records (or replaces) the Cloud media id of `media_id`.
    async fn put_cloud_media(&self, media_id: &str, cloud: &CloudMedia) -> Result<(), StoreError>;
    /// Forgets `cloud_id` as the Cloud id of `media_id` (Cloud no longer knows it); a newer id
    /// recorded meanwhile by another replica is kept.
    async fn forget_cloud_media(&self, media_id: &str, cloud_id: &str) -> Result<(), StoreError>;
}

/// The Cloud API's webhooks, kept as received before they are processed, with what of them
/// could not be mapped.
#[async_trait]
pub trait WebhookJournal: Send + Sync {
    /// Webhooks kept but not processed, received at or before `before` (a replica that died
    /// between keeping one and processing it), oldest first, at most `limit`: their ids.
    async fn unprocessed_webhooks(
        &self,
        before: UnixMs,
        limit: u32,
    ) -> Result<Vec<i64>, StoreError>;
    /// Whether webhook `id` has been processed (`true` if it is gone).
    async fn webhook_is_processed(&self, id: i64) -> Result<bool, StoreError>;
    /// Keeps a webhook's raw `body` (its SHA-256 `digest`) received at `received_at`; the
    /// same body delivered again is the same row.
    async fn journal_webhook(
        &self,
        digest: &str,
        body: &[u8],
        received_at: UnixMs,
    ) -> Result<Journaled, StoreError>;
    /// Marks webhook `id` processed at `at`, with the parts not mapped (JSON), if any.
    async fn webhook_processed(
        &self,
        id: i64,
        unmapped: Option<&str>,
        at: UnixMs,
    ) -> Result<(), StoreError>;
    /// Webhooks with parts not mapped, newest first, at most `limit`.
    async fn unmapped_webhooks(&self, limit: u32) -> Result<Vec<JournaledWebhook>, StoreError>;
    /// The body of webhook `id` as received, if it is still kept.
    async fn journaled_body(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError>;
}

/// What the retention worker deletes, each in batches of at most `limit` rows, oldest first,
/// so no statement holds the database for long. Cutoffs are passed in by the caller, who owns
/// the clock; nothing is deleted that something still waits for.
#[async_trait]
pub trait Retention: Send + Sync {
    /// Takes (or renews) the lease of `job` for `owner` until `now + ttl`, if it is free,
    /// expired or already `owner`'s; `false` if another owner holds it.
    async fn hold_job(
        &self,
        job: &str,
        owner: &str,
        now: UnixMs,
        ttl: Duration,
    ) -> Result<bool, StoreError>;
    /// Examines up to `limit` stored messages after `walk.after_seq`, in `seq` order, up to the
    /// first accepted after `walk.accepted_through`, and deletes those finished: `read` or
    /// `failed` ones that last changed at or before `finished_before`, `sent` or
    /// `delivered` ones at or before `unconfirmed_before`. Never a queued message, and never
    /// one with a callback still waiting (every callback of a message is written when its
    /// status changes, so one that last changed before the oldest waiting callback was written
    /// has none). No index names a message's status (its changes stay cheap), so retention
    /// walks the messages in `seq` order, a page at a time. The delivery attempts of the
    /// messages deleted go with them.
    async fn purge_messages(
        &self,
        walk: &MessagePurge,
        limit: u32,
    ) -> Result<PurgedPage, StoreError>;
    /// Deletes customers' messages received at or before `before` whose webhook was
    /// delivered, and the Cloud webhooks received by then that were processed.
    async fn purge_inbound(&self, before: UnixMs, limit: u32) -> Result<u64, StoreError>;
    /// Deletes media uploaded at or before `before`, with its chunks and its Cloud id;
    /// `limit` media at a time (each up to 128 chunks).
    async fn purge_media(&self, before: UnixMs, limit: u32) -> Result<u64, StoreError>;
    /// Deletes what has expired by itself: contact checks made at or before
    /// `contacts_before`, idempotency keys and revoked-token records past their expiry
    /// (`now`), failed-login counters whose window started at or before `logins_before`, and
    /// sandbox windows and conversations older than `windows_before`. At most `limit` rows
    /// of each.
    async fn purge_expired(&self, expired: &crate::Expired, limit: u32) -> Result<u64, StoreError>;
}

/// The account's profile settings (`/v1/settings/profile/about`, `/v1/settings/business/profile`,
/// `/v1/settings/account/two-step`): a JSON document per name, shared by every replica.
#[async_trait]
pub trait Documents: Send + Sync {
    async fn document(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Replaces the document `name` only if it is still `expected` (`None`: there was none):
    /// `false` if another change came first, so a partial update never loses a concurrent one.
    async fn replace_document(
        &self,
        name: &str,
        expected: Option<&str>,
        document: &str,
    ) -> Result<bool, StoreError>;
    /// `false` if there was none.
    async fn delete_document(&self, name: &str) -> Result<bool, StoreError>;
    /// Every document, by name.
    async fn all_documents(&self) -> Result<Vec<Document>, StoreError>;
}

/// What the console reads and does: paged reads by keys the tables are indexed by, so watching
/// costs the message path nothing measurable.
#[async_trait]
pub trait Browse: Send + Sync {
    /// Stored messages, newest first (by `seq`), as `page` filters them.
    async fn messages_page(&self, page: &MessagePage) -> Result<Vec<MessageSummary>, StoreError>;
    /// The messages named by `ids` (Premise's ids), in no order; unknown ones are left out.
    async fn message_summaries(&self, ids: &[String]) -> Result<Vec<MessageSummary>, StoreError>;
    /// Customers' messages, newest first (by arrival), received before `before` if given, only
    /// those of `from` if given; at most `limit`.
    async fn inbound_page(
        &self,
        from: Option<&str>,
        before: Option<UnixMs>,
        limit: u32,
    ) -> Result<Vec<InboundMessage>, StoreError>;
    /// Makes waiting callback `seq` due at `at` without counting a failure ("retry now");
    /// `false` if it is gone (delivered meanwhile).
    async fn retry_callback(&self, seq: i64, at: UnixMs) -> Result<bool, StoreError>;
    /// Message `id`'s history (when it reached each status, why it failed, every delivery
    /// attempt of its callbacks), read by its key and the attempts' index; `None` if unknown.
    async fn message_history(&self, id: &str) -> Result<Option<MessageHistory>, StoreError>;
}

/// What the database holds, for diagnostics.
#[async_trait]
pub trait Inventory: Send + Sync {
    /// Each table of the schema and its number of rows.
    async fn row_counts(&self) -> Result<Vec<TableRows>, StoreError>;
}

/// Who customers are (business-scoped user ids, phone numbers, usernames), as Meta tells it.
#[async_trait]
pub trait Customers: Send + Sync {
    /// Keeps what `customers` say at `at` (each field given replaces the one kept; one not
    /// given keeps it), in one transaction. A phone number kept under another user id moves to
    /// the one given: those customers are answered, as they were and as they are now.
    async fn learn_customers(
        &self,
        customers: &[KnownCustomer],
        at: UnixMs,
    ) -> Result<Vec<CustomerMoved>, StoreError>;
    /// Moves what is kept under user id `previous` to `current` (Meta's `user_id_update`),
    /// with the phone number if given: the customer as kept before, if known.
    async fn customer_renamed(
        &self,
        previous: &str,
        current: &KnownCustomer,
        at: UnixMs,
    ) -> Result<Option<KnownCustomer>, StoreError>;
    /// The customer known by `key`, a user id or a phone number.
    async fn customer(&self, key: &str) -> Result<Option<KnownCustomer>, StoreError>;
}
