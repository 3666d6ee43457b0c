-- Who each customer is, as Meta tells it in webhooks since 2026: their business-scoped user id
-- (BSUID, the key: one row each), their phone number when Meta gives it, their parent BSUID and
-- username. Learnt from customers' messages and statuses alike, shared by every replica; a
-- number learnt for a new BSUID moves to it (the customer changed number). Kept while the
-- customer may write again: rows are small, one per customer.
CREATE TABLE customers (
    user_id        TEXT PRIMARY KEY,
    wa_id          TEXT,
    parent_user_id TEXT,
    username       TEXT,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX customers_wa_id ON customers (wa_id);
