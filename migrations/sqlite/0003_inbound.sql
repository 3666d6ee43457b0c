-- Inbound messages (from customers), so integrations can mark them read, and the
-- `biz_opaque_callback_data` of outbound messages, echoed in each of their status callbacks.

-- What customers sent. `read_at` is set when the integration marks the message read.
CREATE TABLE inbound_messages (
    id          TEXT PRIMARY KEY,
    sender      TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    payload     TEXT NOT NULL,
    read_at     INTEGER
);

-- Kept beside the payload so recording a status need not parse the stored request.
ALTER TABLE messages ADD COLUMN callback_data TEXT;
