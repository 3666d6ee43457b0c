-- Why a callback's last delivery failed (the receiver's status, or the request's error), for the
-- console's list of callbacks waiting. Written only when a delivery fails; NULL until then.
ALTER TABLE callbacks ADD COLUMN last_error TEXT;
