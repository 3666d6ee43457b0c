-- The last `seq` committed. Enqueues update it under the account row lock, so a batch knows
-- that everything up to the previous value was committed before it, and a queue read taken
-- with it knows how far it covers: shard workers take new batches straight from the committer
-- of their own replica and read the store only to catch up.
ALTER TABLE account ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;
UPDATE account SET last_seq = COALESCE((SELECT max(seq) FROM messages), 0);
