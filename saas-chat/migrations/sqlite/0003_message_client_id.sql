-- The sending client's own id for a message, so a message read back from the database
-- (to fill a gap in a socket's sequence) carries it like the live frame.
ALTER TABLE chat_messages ADD COLUMN client_id TEXT;
