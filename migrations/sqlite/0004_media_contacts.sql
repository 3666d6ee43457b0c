-- Uploaded media, the contacts check cache and idempotency keys: state that any replica must be
-- able to serve (design promise 5), so it lives here rather than on a local disk.

-- One row per upload. An upload writes its chunks one short transaction at a time (so a slow
-- client never holds SQLite's single writer) and becomes visible only when `complete` flips,
-- together with its size and checksum. Unfinished rows are a dead upload's leftovers.
CREATE TABLE media (
    id         TEXT PRIMARY KEY,
    mime_type  TEXT NOT NULL,
    size       INTEGER NOT NULL DEFAULT 0,
    chunks     INTEGER NOT NULL DEFAULT 0,
    sha256     TEXT NOT NULL DEFAULT '',
    complete   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX media_unfinished ON media (created_at) WHERE complete = 0;

-- The bytes, in order: chunk `idx` holds bytes [idx * chunk size, ...).
CREATE TABLE media_chunks (
    media_id TEXT NOT NULL REFERENCES media (id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    data     BLOB NOT NULL,
    PRIMARY KEY (media_id, idx)
);

-- What /v1/contacts found for a normalised number, reused for 7 days (as On-Premises cached
-- contact checks) unless the request asks for `force_check`. `wa_id` NULL: invalid.
CREATE TABLE contact_checks (
    number     TEXT PRIMARY KEY,
    wa_id      TEXT,
    checked_at INTEGER NOT NULL
);
CREATE INDEX contact_checks_checked_at ON contact_checks (checked_at);

-- `Idempotency-Key` reservations and the answers they produced. `status` NULL: the first
-- request is still running, holding the key until `locked_until`.
CREATE TABLE idempotency_keys (
    key          TEXT PRIMARY KEY,
    fingerprint  TEXT NOT NULL,
    status       INTEGER,
    body         BLOB,
    locked_until INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
