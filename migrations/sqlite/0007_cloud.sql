-- The Cloud bridge (upstream.kind = cloud).
--
-- The Cloud API's own id (`wamid`) of each message it acknowledged, written with the
-- acknowledgement, so whichever replica receives a status webhook maps it back to Premise's id.
ALTER TABLE messages ADD COLUMN upstream_id TEXT;
CREATE INDEX messages_by_upstream_id ON messages (upstream_id) WHERE upstream_id IS NOT NULL;

-- Uploaded media (`/v1/media`) that messages named, uploaded to the Cloud API once and reused by
-- every replica until Cloud forgets the id (30 days) or says it does not know it.
CREATE TABLE cloud_media (
    media_id    TEXT PRIMARY KEY,
    cloud_id    TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL
);
