//! The rows the store hands out and takes in.

use premise_base::UnixMs;
use premise_wire::{MessageStatus, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A stored account. `password_hash` is a PHC string (Argon2id).
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    pub must_change_password: bool,
    pub created_at: UnixMs,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("must_change_password", &self.must_change_password)
            .finish_non_exhaustive()
    }
}

/// What a bearer token's subject resolves to right now: the account it names (if it still
/// exists) and whether the token itself was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSubject {
    pub user_id: String,
    pub role: Role,
    pub revoked: bool,
}

pub(crate) fn parse_role(raw: &str) -> Result<Role, crate::StoreError> {
    Role::parse("role", raw)
        .map_err(|_| crate::StoreError::Corrupt(format!("unknown role {raw:?}")))
}

/// The account's shard count and its generation (bumped on every change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub shards: u32,
    pub generation: i64,
}

/// Who a message goes to or comes from (a phone number or a business-scoped user id, as given)
/// with the key it is routed by: its CRC-32, whose remainder by the shard count is its shard,
/// so one customer's messages and statuses keep their order on one shard.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Routed {
    id: String,
    crc: u32,
}

impl Routed {
    pub fn new(id: impl Into<String>) -> Self {
        let id = id.into();
        Self { crc: premise_wire::messages::routing_crc(&id), id }
    }

    /// A value as stored with its key (which the store wrote from [`Routed::new`]).
    pub(crate) fn stored(id: String, crc: i64) -> Self {
        Self { id, crc: u32::try_from(crc).unwrap_or_default() }
    }

    pub fn as_str(&self) -> &str {
        &self.id
    }

    pub fn crc(&self) -> u32 {
        self.crc
    }

    pub fn into_string(self) -> String {
        self.id
    }
}

impl From<&premise_wire::messages::Recipient> for Routed {
    fn from(recipient: &premise_wire::messages::Recipient) -> Self {
        Self { id: recipient.as_str().to_owned(), crc: recipient.crc32() }
    }
}

/// A message to enqueue: already validated, with its id assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub id: String,
    pub recipient: Routed,
    /// The canonical request JSON.
    pub payload: String,
    pub accepted_at: UnixMs,
    /// `biz_opaque_callback_data`, echoed in every status callback of the message.
    pub callback_data: Option<String>,
    /// The login token the message was sent with, checked by the statement that stores it: a
    /// message whose token is revoked, or whose account is gone, by then is not stored but
    /// refused ([`Enqueued::refused`]). `None` stores it unchecked.
    pub credential: Option<Credential>,
    /// The `Idempotency-Key` the message was sent with, and the answer its request gets: the
    /// key is stored with the message, by the same statement, so a retry finds either both or
    /// neither. A message whose key is already held (by an answer not yet expired) is not
    /// stored but refused ([`Enqueued::refused`]); its request reads the answer kept.
    pub idempotency: Option<KeptAnswer>,
}

/// A Cloud webhook as the journal keeps it, for an admin's look at what was not mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournaledWebhook {
    pub id: i64,
    pub received_at: UnixMs,
    pub processed_at: Option<UnixMs>,
    /// The parts not mapped and why, JSON: `[{"why", "part"}]`.
    pub unmapped: String,
}

/// A stored message: its request as stored and where it is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub payload: String,
    pub status: MessageStatus,
}

/// A page of the stored messages, for the console: newest first, below `before_seq` if given,
/// only those of `recipient`, in `status`, known by `id` (Premise's or the upstream's), or
/// accepted at or before `accepted_by`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessagePage {
    pub before_seq: Option<i64>,
    pub accepted_by: Option<UnixMs>,
    pub recipient: Option<String>,
    pub status: Option<MessageStatus>,
    pub id: Option<String>,
    pub limit: u32,
}

/// A stored message as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSummary {
    pub seq: i64,
    pub id: String,
    pub recipient: String,
    pub status: MessageStatus,
    pub accepted_at: UnixMs,
    /// When it last changed status.
    pub updated_at: UnixMs,
    /// The upstream's id (Cloud's `wamid`), once acknowledged.
    pub upstream_id: Option<String>,
}

/// A message sent but not yet read: what an upstream that resumes statuses after a takeover
/// needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub message_id: String,
    pub recipient: String,
    pub status: MessageStatus,
    /// When it reached `status`.
    pub since: UnixMs,
}

/// What Meta told of a customer: their business-scoped user id, and their phone number,
/// parent BSUID and username when it gave them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KnownCustomer {
    pub user_id: String,
    pub wa_id: Option<String>,
    pub parent_user_id: Option<String>,
    pub username: Option<String>,
    /// Their profile's name, from their last message (statuses do not carry it).
    pub profile_name: Option<String>,
}

impl KnownCustomer {
    /// Takes what `later` (the same customer, told later) gives: each field given replaces this
    /// one's; a field not given stays.
    pub fn absorb(&mut self, later: &Self) {
        for (new, old) in [
            (&later.wa_id, &mut self.wa_id),
            (&later.parent_user_id, &mut self.parent_user_id),
            (&later.username, &mut self.username),
            (&later.profile_name, &mut self.profile_name),
        ] {
            if new.is_some() {
                old.clone_from(new);
            }
        }
    }

    /// Whether `later` says something of this customer that this does not.
    pub fn is_told_more_by(&self, later: &Self) -> bool {
        let differs = |new: &Option<String>, old: &Option<String>| new.is_some() && new != old;
        differs(&later.wa_id, &self.wa_id)
            || differs(&later.parent_user_id, &self.parent_user_id)
            || differs(&later.username, &self.username)
            || differs(&later.profile_name, &self.profile_name)
    }

    /// One entry per user id, in order of first mention, later mentions absorbed.
    pub fn merged(customers: impl IntoIterator<Item = Self>) -> Vec<Self> {
        let mut merged: Vec<Self> = Vec::new();
        let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for customer in customers {
            match at.get(&customer.user_id) {
                Some(&i) => merged[i].absorb(&customer),
                None => {
                    at.insert(customer.user_id.clone(), merged.len());
                    merged.push(customer);
                }
            }
        }
        merged
    }
}

/// A customer whose phone number was known under another business-scoped user id until now:
/// they changed number (Meta gives a new BSUID with a new number) or Meta reissued their id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerMoved {
    pub previous: KnownCustomer,
    pub current: KnownCustomer,
}

/// An `Idempotency-Key`'s answer as kept: the key (scoped by method and path), the SHA-256 of
/// the request body it answered, the answer's HTTP status and body, and until when it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptAnswer {
    pub key: String,
    pub fingerprint: String,
    pub status: u16,
    pub body: Vec<u8>,
    /// From then on the key is free again (kept to the second).
    pub expires_at: UnixMs,
}

/// A login token as the store knows it: valid while its account exists with the same id and
/// its `jti` is not revoked (what [`crate::Store::token_subject`] reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub user_id: String,
    pub jti: String,
}

/// A queued message as a shard worker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub seq: i64,
    pub id: String,
    pub recipient: String,
    pub payload: String,
}

/// What one group commit stored. Every message with a `seq` up to `previous_seq` was
/// committed before it, and its own messages are all those from `previous_seq` (exclusive) to
/// the last of `messages`: a shard worker that has seen its shard up to `previous_seq` can take
/// its share of this batch without reading the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub previous_seq: i64,
    /// The highest `seq` committed with this batch (`previous_seq` when empty).
    pub last_seq: i64,
    /// The shard-count generation the batch was routed with.
    pub generation: i64,
    /// Each message with its shard, in `seq` order.
    pub messages: Vec<Placed>,
    /// The ids of the batch's messages not stored because their credential no longer held.
    pub refused: Vec<String>,
}

/// A message as stored by a group commit, and the shard it went to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub shard: u32,
    pub message: QueuedMessage,
}

/// A read of a shard's queue: the messages, and how far the shard is now known in full (every
/// queued message of the shard with `seq <= covered_through` was returned or read before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRead {
    pub messages: Vec<QueuedMessage>,
    pub covered_through: i64,
}

/// Builds the [`Enqueued`] of a committed batch: `placed` gives the `seq` and shard of each
/// message stored (by its index in the batch). A message not stored was refused if it carried
/// a credential or an idempotency key; one without either is an error (the statement lost a
/// row).
pub(crate) fn enqueued(
    batch: &[NewMessage],
    placed: impl Fn(usize, &NewMessage) -> Option<(i64, u32)>,
    previous_seq: i64,
    last_seq: i64,
    generation: i64,
) -> Result<Enqueued, crate::StoreError> {
    let mut messages = Vec::with_capacity(batch.len());
    let mut refused = Vec::new();
    for (i, m) in batch.iter().enumerate() {
        match placed(i, m) {
            Some((seq, shard)) => {
                let queued = QueuedMessage {
                    seq,
                    id: m.id.clone(),
                    recipient: m.recipient.as_str().to_owned(),
                    payload: m.payload.clone(),
                };
                messages.push(Placed { shard, message: queued });
            }
            None if m.credential.is_some() || m.idempotency.is_some() => {
                refused.push(m.id.clone());
            }
            None => {
                return Err(crate::StoreError::Corrupt(format!(
                    "message {} was not inserted",
                    m.id
                )));
            }
        }
    }
    messages.sort_by_key(|placed| placed.message.seq);
    Ok(Enqueued { previous_seq, last_seq, generation, messages, refused })
}

/// Whether each message of a batch may be stored as far as its idempotency key goes: the
/// first message of the batch with a key may, a later one with the same key may not (it is
/// refused, and its request finds the first's answer once the batch is committed). One
/// statement cannot both insert a key and find it taken.
pub(crate) fn first_of_each_key(batch: &[NewMessage]) -> Vec<bool> {
    let mut seen = std::collections::HashSet::new();
    batch
        .iter()
        .map(|m| m.idempotency.as_ref().is_none_or(|k| seen.insert(k.key.as_str())))
        .collect()
}

/// A queue read's row: a message (absent when the shard has none) and the account's last seq.
pub(crate) type QueueRow = (Option<i64>, Option<String>, Option<String>, Option<String>, i64);

/// Builds a [`QueueRead`] from rows of (seq, id, recipient, payload, the account's last seq);
/// no rows at all means the generation has moved on. When fewer than `limit` messages came
/// back, the read covers everything up to the account's last seq; otherwise up to the last
/// message returned.
pub(crate) fn queue_read(rows: Vec<QueueRow>, after_seq: i64, limit: u32) -> QueueRead {
    let last_seq = rows.first().map(|r| r.4);
    let messages: Vec<QueuedMessage> = rows
        .into_iter()
        .filter_map(|(seq, id, recipient, payload, _)| {
            Some(QueuedMessage { seq: seq?, id: id?, recipient: recipient?, payload: payload? })
        })
        .collect();
    let covered_through = match (last_seq, messages.last()) {
        (None, _) => after_seq,
        (Some(_), Some(last)) if messages.len() >= limit as usize => last.seq,
        (Some(last_seq), _) => last_seq.max(after_seq),
    };
    QueueRead { messages, covered_through }
}

/// A status as its column keeps it (`MessageStatus::code`), refusing a code no build wrote.
pub(crate) fn status(code: i16) -> Result<MessageStatus, crate::StoreError> {
    MessageStatus::from_code(code)
        .ok_or_else(|| crate::StoreError::Corrupt(format!("unknown message status {code}")))
}

/// A message's state when a status change is being recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageState {
    pub id: String,
    /// Its place in acceptance order (the messages table's key).
    pub seq: i64,
    pub recipient: Routed,
    pub shard: u32,
    pub status: MessageStatus,
    /// The message's `biz_opaque_callback_data`, if it had one.
    pub callback_data: Option<String>,
}

/// What to write for a batch of status events, decided by the engine from the current states.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusPlan {
    pub updates: Vec<StatusUpdate>,
    pub callbacks: Vec<NewCallback>,
    /// The upstream's ids of messages, learnt from acknowledgements.
    pub upstream_ids: Vec<UpstreamId>,
}

/// A message's new status, with when it reached each status it passed through on the way
/// (kept for its history) and why it failed, if it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub message_id: String,
    pub status: MessageStatus,
    /// The statuses reached by this update, in order, each at its time (the upstream's).
    pub reached: Vec<(MessageStatus, UnixMs)>,
    /// A failed message's `errors`, as JSON.
    pub errors: Option<String>,
}

impl StatusUpdate {
    /// `status` reached at `at`, with no errors.
    pub fn to(message_id: impl Into<String>, status: MessageStatus, at: UnixMs) -> Self {
        Self { message_id: message_id.into(), status, reached: vec![(status, at)], errors: None }
    }

    /// When this update reached `status`, if it did.
    pub fn reached_at(&self, status: MessageStatus) -> Option<i64> {
        self.reached.iter().find(|(s, _)| *s == status).map(|(_, at)| at.ms())
    }
}

/// A message of Premise's and the id the upstream knows it by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UpstreamId {
    pub message_id: String,
    pub upstream_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCallback {
    pub shard: u32,
    /// The routing key of the message's recipient (kept with the callback, so a change of
    /// shard count moves it with the recipient's messages).
    pub recipient_crc: u32,
    pub message_id: String,
    /// The message's `seq`.
    pub message_seq: i64,
    /// The status it reports.
    pub status: MessageStatus,
    /// One `statuses[]` entry, as JSON.
    pub body: String,
}

/// One delivery attempt of callbacks (one POST to the webhook receiver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at: UnixMs,
    /// The receiver's HTTP status; `None` when no answer came.
    pub http_status: Option<u16>,
    pub latency: std::time::Duration,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// What became of the callbacks `seqs` after an attempt: delivered (or given up on), or to be
/// tried again at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub seqs: Vec<i64>,
    pub attempt: Attempt,
    /// `None`: done with (delete the callbacks); `Some(at)`: count a failure, try again at `at`.
    pub retry_at: Option<UnixMs>,
}

/// One logged attempt to deliver one of a message's callbacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackAttempt {
    pub callback_seq: i64,
    /// The status the callback reported (`None` for an inbound message's webhook).
    pub status: Option<MessageStatus>,
    pub attempt: Attempt,
}

/// A message's history: when it reached each status, why it failed, and every delivery
/// attempt of its callbacks, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageHistory {
    pub reached: Vec<(MessageStatus, UnixMs)>,
    pub errors: Option<String>,
    pub attempts: Vec<CallbackAttempt>,
}

/// A callback waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCallback {
    pub seq: i64,
    /// The shard it is queued on: it is delivered only while that shard's lease holds.
    pub shard: u32,
    pub message_id: String,
    pub body: String,
    /// A whole inbound-message webhook body rather than one `statuses[]` entry.
    pub inbound: bool,
    pub failures: u32,
    pub next_attempt_at: UnixMs,
    /// Why its last delivery failed, if one did.
    pub last_error: Option<String>,
}

/// A shard lease as held by its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub shard: u32,
    pub epoch: i64,
    pub generation: i64,
}

/// How much is waiting: queued messages and undelivered callbacks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub queued: u64,
    pub callbacks: u64,
}

/// What waits in one shard, for monitoring: queued messages, how long the oldest has waited,
/// and undelivered callbacks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardBacklog {
    pub shard: u32,
    pub queued: u64,
    /// When the oldest queued message was accepted; `None` when none is queued.
    pub oldest_queued_at: Option<UnixMs>,
    pub callbacks: u64,
}

/// A replica and when it was last heard of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub node: String,
    pub heartbeat_at: UnixMs,
    /// The figures it published with its heartbeat (JSON), for `/v1/stats/*`.
    pub stats: Option<String>,
}

/// A message a customer sent, to store and to deliver as an inbound webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInbound {
    pub id: String,
    /// The sender's WhatsApp id (or user id): the webhook goes through the sender's shard,
    /// after the sender's earlier messages.
    pub from: Routed,
    pub received_at: UnixMs,
    /// The `messages[]` entry (JSON).
    pub payload: String,
    /// The whole inbound webhook body (JSON).
    pub webhook: String,
}

/// A message a customer sent, as stored until the integration marks it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    pub id: String,
    /// The sender's WhatsApp id.
    pub from: String,
    pub received_at: UnixMs,
    /// The inbound message as its webhook carries it (JSON).
    pub payload: String,
    /// When the integration marked it read.
    pub read_at: Option<UnixMs>,
}

/// A `media` row: id, MIME type, size, chunk count, SHA-256, creation time.
pub(crate) type MediaRow = (String, String, i64, i32, String, i64);

/// A [`MediaInfo`] from its row, refusing values no upload can have.
pub(crate) fn media_info(
    (id, mime_type, size, chunks, sha256, created_at): MediaRow,
) -> Result<MediaInfo, crate::StoreError> {
    let corrupt = |what: &str| crate::StoreError::Corrupt(format!("media {id}: {what}"));
    Ok(MediaInfo {
        size: u64::try_from(size).map_err(|_| corrupt("negative size"))?,
        chunks: u32::try_from(chunks).map_err(|_| corrupt("chunk count out of range"))?,
        id: id.clone(),
        mime_type,
        sha256,
        created_at: UnixMs::from_secs(created_at),
    })
}

/// Per-shard backlogs from (shard, queued count, oldest acceptance) and (shard, callbacks)
/// rows, one entry per shard that has either, in shard order.
pub(crate) fn shard_backlogs(
    queued: Vec<(i32, i64, i64)>,
    callbacks: Vec<(i32, i64)>,
) -> Vec<ShardBacklog> {
    let mut by_shard = std::collections::BTreeMap::<u32, ShardBacklog>::new();
    for (shard, depth, oldest) in queued {
        let shard = shard.unsigned_abs();
        let e = by_shard.entry(shard).or_insert(ShardBacklog { shard, ..Default::default() });
        e.queued = depth.unsigned_abs();
        e.oldest_queued_at = Some(UnixMs(oldest));
    }
    for (shard, count) in callbacks {
        let shard = shard.unsigned_abs();
        let e = by_shard.entry(shard).or_insert(ShardBacklog { shard, ..Default::default() });
        e.callbacks = count.unsigned_abs();
    }
    by_shard.into_values().collect()
}

/// A finished upload, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    pub id: String,
    pub mime_type: String,
    pub size: u64,
    /// How many chunks hold the bytes: indexes `0..chunks`.
    pub chunks: u32,
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
    pub created_at: UnixMs,
}

/// What a contact check found for a normalised number: its WhatsApp id if it is on WhatsApp,
/// `None` if it is not, and when that was found out (kept to the second).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactCheck {
    pub number: String,
    pub wa_id: Option<String>,
    pub checked_at: UnixMs,
}

/// The cutoffs of what expires by itself, for [`crate::Retention::purge_expired`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// Idempotency keys and revoked-token records expired by then go.
    pub now: UnixMs,
    /// Contact checks made at or before this go.
    pub contacts_before: UnixMs,
    /// Failed-login counters whose window started at or before this go.
    pub logins_before: UnixMs,
    /// Sandbox conversation windows opened before this go.
    pub windows_before: UnixMs,
}

/// A walk of the stored messages for [`crate::Retention::purge_messages`]: from which `seq`,
/// up to which acceptance time, and what is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessagePurge {
    /// Examine the messages after this `seq`.
    pub after_seq: i64,
    /// Stop at the first one accepted after this: nothing newer can be due.
    pub accepted_through: UnixMs,
    /// `read` or `failed` messages that last changed at or before this go.
    pub finished_before: UnixMs,
    /// `sent` or `delivered` ones that last changed at or before this go.
    pub unconfirmed_before: UnixMs,
    /// `sent` or `delivered` ones accepted after this may well be read soon: they
    /// are kept only for now (see [`PurgedPage::first_kept_seq`]).
    pub recent_after: UnixMs,
}

/// What one page of a [`MessagePurge`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgedPage {
    pub deleted: u64,
    /// The last `seq` examined (where the walk goes on), or `after_seq` if none was.
    pub through_seq: i64,
    /// Whether there may be more to examine: a whole page was, none accepted too late.
    pub more: bool,
    /// The first message examined that stays only for now: queued, finished but owed a
    /// callback, or recent and not yet read. (An older one not yet confirmed stays until the
    /// offline window has passed.)
    pub first_kept_seq: Option<i64>,
}

/// A sandbox conversation (24 h of conversation-based pricing with one customer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConversation {
    pub id: String,
    /// Whether the customer wrote first (`user_initiated`) or the business did.
    pub user_initiated: bool,
    /// When it expires.
    pub expires: UnixMs,
}

/// A sandbox conversation to open with a customer, unless one is open already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationOpening {
    pub wa_id: String,
    pub candidate: SandboxConversation,
}

/// When a sandbox customer last wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerWindow {
    pub wa_id: String,
    pub wrote_at: UnixMs,
}

/// The Cloud API's id of an upload, and when it was uploaded to Cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudMedia {
    pub cloud_id: String,
    pub uploaded_at: UnixMs,
}

/// A Cloud webhook kept in the journal: its id, and whether it was processed already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Journaled {
    pub id: i64,
    pub processed: bool,
}

/// A settings document (`/v1/settings/...`) by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub name: String,
    pub body: String,
}

/// A table of the schema and how many rows it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableRows {
    pub table: &'static str,
    pub rows: i64,
}

/// A callback row as read: `(seq, message_id, body, failures, next_attempt_at, kind, shard)`.
pub(crate) type CallbackRow = (i64, String, String, i32, i64, i16, i32, Option<String>);

/// A sandbox conversation's row: (wa_id, id, user_initiated, expires_ms).
pub(crate) type ConversationRow = (String, String, bool, i64);

/// A contact check's row: (number, WhatsApp id if valid, checked at).
pub(crate) type ContactRow = (String, Option<String>, i64);

/// [`Settled`] outcomes as columns, one row per callback: what both backends bind.
pub(crate) struct SettledRows<'a> {
    pub seqs: Vec<i64>,
    pub ats: Vec<i64>,
    pub http_statuses: Vec<Option<i32>>,
    pub latencies: Vec<i32>,
    pub errors: Vec<Option<&'a str>>,
    pub retry_ats: Vec<Option<i64>>,
}

pub(crate) fn settled_rows(settled: &[Settled]) -> SettledRows<'_> {
    let count = settled.iter().map(|s| s.seqs.len()).sum();
    let mut rows = SettledRows {
        seqs: Vec::with_capacity(count),
        ats: Vec::with_capacity(count),
        http_statuses: Vec::with_capacity(count),
        latencies: Vec::with_capacity(count),
        errors: Vec::with_capacity(count),
        retry_ats: Vec::with_capacity(count),
    };
    for s in settled {
        let latency = i32::try_from(s.attempt.latency.as_millis()).unwrap_or(i32::MAX);
        for seq in &s.seqs {
            rows.seqs.push(*seq);
            rows.ats.push(s.attempt.at.ms());
            rows.http_statuses.push(s.attempt.http_status.map(i32::from));
            rows.latencies.push(latency);
            rows.errors.push(s.attempt.error.as_deref());
            rows.retry_ats.push(s.retry_at.map(UnixMs::ms));
        }
    }
    rows
}
