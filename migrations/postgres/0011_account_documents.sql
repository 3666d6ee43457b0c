-- The account's profile settings (about, business profile, two-step verification), each a JSON
-- document under its name, shared by every replica.
CREATE TABLE account_documents (
    name     TEXT PRIMARY KEY,
    document TEXT NOT NULL
);
