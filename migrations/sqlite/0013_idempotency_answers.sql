-- An `Idempotency-Key` now holds an answer from the moment it is stored: a sent message's key
-- is inserted by the statement that stores the message, so there is no reservation without an
-- answer any more (and no holder whose lock must run out). Reservations the previous version
-- left without an answer have none to replay, and go. (SQLite cannot add NOT NULL to a
-- column: the table is made anew.)
DROP INDEX idempotency_keys_expires_at;
ALTER TABLE idempotency_keys RENAME TO idempotency_keys_before;
CREATE TABLE idempotency_keys (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status      INTEGER NOT NULL,
    body        BLOB NOT NULL,
    expires_at  INTEGER NOT NULL
);
INSERT INTO idempotency_keys (key, fingerprint, status, body, expires_at)
    SELECT key, fingerprint, status, body, expires_at FROM idempotency_keys_before
    WHERE status IS NOT NULL AND body IS NOT NULL;
DROP TABLE idempotency_keys_before;
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
