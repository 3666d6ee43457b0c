-- An `Idempotency-Key` now holds an answer from the moment it is stored: a sent message's key
-- is inserted by the statement that stores the message, so there is no reservation without an
-- answer any more (and no holder whose lock must run out). Reservations the previous version
-- left without an answer have none to replay, and go. (SQLite cannot add NOT NULL to a
-- column: the table is made anew.)
CREATE TABLE idempotency_answers (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status      INTEGER NOT NULL,
    body        BLOB NOT NULL,
    expires_at  INTEGER NOT NULL
);
INSERT INTO idempotency_answers (key, fingerprint, status, body, expires_at)
    SELECT key, fingerprint, status, body, expires_at FROM idempotency_keys
    WHERE status IS NOT NULL AND body IS NOT NULL;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_answers RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
