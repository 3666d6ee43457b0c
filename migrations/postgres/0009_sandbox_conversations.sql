-- The sandbox's open conversation with each customer (24 h, conversation-based pricing), shared
-- by every replica: a failover keeps billing in the conversation another replica opened.
CREATE TABLE sandbox_conversations (
    wa_id          TEXT PRIMARY KEY,
    id             TEXT NOT NULL,
    user_initiated BOOLEAN NOT NULL,
    expires_ms     BIGINT NOT NULL
);
