-- A message's history, for the console's message page.
--
-- When each status was reached (the upstream's time, Unix ms) and why a failed message failed
-- (its `errors`, JSON): written with the status, in the same statement (a HOT update stays one).
ALTER TABLE messages ADD COLUMN sent_at BIGINT;
ALTER TABLE messages ADD COLUMN delivered_at BIGINT;
ALTER TABLE messages ADD COLUMN read_at BIGINT;
ALTER TABLE messages ADD COLUMN failed_at BIGINT;
ALTER TABLE messages ADD COLUMN errors TEXT;

-- The status a callback reports and the `seq` of its message (both NULL for an inbound message's
-- webhook).
ALTER TABLE callbacks ADD COLUMN status SMALLINT;
ALTER TABLE callbacks ADD COLUMN message_seq BIGINT;

-- Every delivery attempt of a message's status callbacks: when, the receiver's HTTP status (NULL
-- when no answer came), how long it took, why it failed. Written in the statement that deletes
-- (delivered) or counts (failed) the callbacks; found, and deleted with the message by
-- retention, by the message's `seq`, which grows as attempts are written: the index is appended
-- to at its end, not written all over.
CREATE TABLE callback_attempts (
    message_seq  BIGINT NOT NULL,
    callback_seq BIGINT NOT NULL,
    status       SMALLINT,
    at           BIGINT NOT NULL,
    http_status  INTEGER,
    latency_ms   INTEGER NOT NULL,
    error        TEXT
);
CREATE INDEX callback_attempts_message ON callback_attempts (message_seq);
