-- Every signed webhook the Cloud API delivers, kept as received (raw bytes, receipt time) before
-- it is processed: the intake answers Meta 200 for anything signed and JSON, so what Premise
-- cannot map must be kept, not refused. `digest` (SHA-256 of the body) makes a redelivery one
-- row; `processed_at` is set once its parts are recorded; `unmapped` lists, as JSON, the parts
-- Premise could not map and why. Retention deletes processed rows with customers' messages.
CREATE TABLE cloud_webhooks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    digest       TEXT NOT NULL UNIQUE,
    received_at  BIGINT NOT NULL,
    body         BLOB NOT NULL,
    processed_at BIGINT,
    unmapped     TEXT
);
CREATE INDEX cloud_webhooks_received_at ON cloud_webhooks (received_at);
