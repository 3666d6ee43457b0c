-- The name a customer gave their WhatsApp profile (`contacts[].profile.name`), from their last
-- message: shown by the console beside their number, user id and username.
ALTER TABLE customers ADD COLUMN profile_name TEXT;
