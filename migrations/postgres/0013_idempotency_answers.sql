-- An `Idempotency-Key` now holds an answer from the moment it is stored: a sent message's key
-- is inserted by the statement that stores the message, so there is no reservation without an
-- answer any more (and no holder whose lock must run out). Reservations the previous version
-- left without an answer have none to replay, and go.
DELETE FROM idempotency_keys WHERE status IS NULL OR body IS NULL;
ALTER TABLE idempotency_keys DROP COLUMN locked_until;
ALTER TABLE idempotency_keys ALTER COLUMN status SET NOT NULL;
ALTER TABLE idempotency_keys ALTER COLUMN body SET NOT NULL;
