-- Users, tokens, login throttling and server-wide secrets: the state that lets any replica
-- answer any authenticated request.

CREATE TABLE users (
    username             TEXT PRIMARY KEY,
    -- A fresh id per account, carried in its tokens: deleting a user and creating one with the
    -- same name does not bring the old tokens back to life.
    id                   TEXT NOT NULL UNIQUE,
    password_hash        TEXT NOT NULL,
    role                 TEXT NOT NULL CHECK (role IN ('ROLE_ADMIN', 'ROLE_USER')),
    must_change_password INTEGER NOT NULL DEFAULT 0,
    created_at           INTEGER NOT NULL
);

-- Tokens revoked by logout, kept until they would have expired anyway.
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);

-- Failed logins per client within the current window (fixed window, shared by all replicas).
CREATE TABLE login_failures (
    client            TEXT PRIMARY KEY,
    failures          INTEGER NOT NULL,
    window_started_at INTEGER NOT NULL
);

-- Secrets generated at first start (the token signing key) so every replica agrees on them.
CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
