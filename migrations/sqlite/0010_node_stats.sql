-- Each replica's figures for /v1/stats/app and /v1/stats/db, written with its heartbeat, so any
-- replica answers with every one's (On-Premises multiconnect keyed them per node).
ALTER TABLE nodes ADD COLUMN stats TEXT;
