-- The outbound pipeline: the account's shard count, application settings, the message queue,
-- the callback outbox, shard leases and the replicas that hold them.

-- One row. `generation` changes with the shard count: leases of an older generation must be
-- gone before any of the new one is taken, so no two workers ever own one recipient.
CREATE TABLE account (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    shards     INTEGER NOT NULL,
    generation INTEGER NOT NULL
);
INSERT INTO account (id, shards, generation) VALUES (1, 1, 1);

-- One row: the /v1/settings/application document (only what was set).
CREATE TABLE app_settings (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    document TEXT NOT NULL
);

-- Every accepted message. `seq` is acceptance order; status 0 (queued) rows are the queue.
CREATE TABLE messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    recipient     TEXT NOT NULL,
    recipient_crc INTEGER NOT NULL,
    shard         INTEGER NOT NULL,
    payload       TEXT NOT NULL,
    status        INTEGER NOT NULL DEFAULT 0,
    accepted_at   INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX messages_queue ON messages (shard, seq) WHERE status = 0;
-- Sent or delivered but not yet read: what an upstream still owes statuses for.
CREATE INDEX messages_unfinished ON messages (shard, seq) WHERE status IN (1, 2);

-- Status callbacks waiting for the webhook receiver's 2xx, in order per message.
CREATE TABLE callbacks (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    shard           INTEGER NOT NULL,
    recipient_crc   INTEGER NOT NULL,
    message_id      TEXT NOT NULL,
    body            TEXT NOT NULL,
    failures        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);
CREATE INDEX callbacks_shard ON callbacks (shard, seq);

-- Who drains which shard: one owner, renewed while alive; `epoch` fences a previous owner.
CREATE TABLE shard_leases (
    shard      INTEGER PRIMARY KEY,
    owner      TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Replicas, by heartbeat, to share shards fairly and report health per node.
CREATE TABLE nodes (
    node         TEXT PRIMARY KEY,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
