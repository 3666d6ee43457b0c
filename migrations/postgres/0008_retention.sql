-- Retention ([retention] settings): what is finished is deleted after a while, in small batches.
--
-- Finished messages (read or failed) in the order they finished, for the retention worker;
-- sent and delivered ones past WhatsApp's offline window are found through messages_unfinished.
CREATE INDEX messages_finished ON messages (updated_at) WHERE status IN (3, 4);
CREATE INDEX inbound_received_at ON inbound_messages (received_at);
CREATE INDEX media_created_at ON media (created_at);

-- Jobs that one replica at a time runs (the retention worker), each held by its owner until
-- `expires_at` (Unix ms) and renewed while it runs.
CREATE TABLE job_leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
