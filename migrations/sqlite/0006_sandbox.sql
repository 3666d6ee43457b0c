-- The sandbox's inbound messages travel through the callback outbox like status callbacks
-- (durable, retried, in order per sender). `kind` tells the dispatcher how to post a row:
-- 0, one `statuses[]` entry (batched into `{"statuses":[...]}`); 1, a whole inbound webhook
-- body (`{"contacts":[...],"messages":[...]}`), posted on its own; its `message_id` is
-- `inbound:<sender>`, so one sender's messages arrive one after another, in order.
ALTER TABLE callbacks ADD COLUMN kind SMALLINT NOT NULL DEFAULT 0;

-- The sandbox's template registry, shared by every replica. Seeded at start from the templates
-- file (a template is added if missing), managed through /v1/sandbox/templates.
CREATE TABLE sandbox_templates (
    name       TEXT NOT NULL,
    language   TEXT NOT NULL,
    definition TEXT NOT NULL,
    PRIMARY KEY (name, language)
);

-- The sandbox's clock (real time plus this offset) and when each customer last wrote, in
-- sandbox time: the 24-hour customer-service window, the same on every replica.
CREATE TABLE sandbox_clock (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    offset_ms BIGINT NOT NULL
);
INSERT INTO sandbox_clock (id, offset_ms) VALUES (1, 0);
CREATE TABLE sandbox_windows (
    wa_id           TEXT PRIMARY KEY,
    last_inbound_ms BIGINT NOT NULL
);
