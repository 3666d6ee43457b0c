-- A message's status changes in place without touching an index (on Postgres, a HOT update):
-- no index names `status` or `updated_at` any more. The queue is read from a per-shard floor
-- (`shard_leases.queue_floor`: no queued message of the shard has a lower `seq`), which the
-- shard's owner advances as it settles messages, along the plain (shard, seq) index.
DROP INDEX messages_queue;
DROP INDEX messages_unfinished;
DROP INDEX messages_finished;
CREATE INDEX messages_shard ON messages (shard, seq);
ALTER TABLE shard_leases ADD COLUMN queue_floor BIGINT NOT NULL DEFAULT 0;
-- The floor of a shard whose lease of the current generation has none yet.
ALTER TABLE account ADD COLUMN queue_floor BIGINT NOT NULL DEFAULT 0;
-- Room in each page for the new version of a row whose status changes (HOT stays on the page).
ALTER TABLE messages SET (fillfactor = 80);
