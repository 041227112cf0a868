-- The sending client's own id for a message, so a message read back from the database
-- (to fill a gap in a socket's sequence) carries it like the live frame.
ALTER TABLE chat_messages ADD COLUMN client_id TEXT;

DROP FUNCTION chat_append_message(UUID, UUID, UUID, UUID, TEXT, TEXT, UUID, TEXT, TEXT, JSONB, TIMESTAMPTZ);

CREATE FUNCTION chat_append_message(
    p_conversation UUID, p_id UUID, p_sender UUID, p_actor UUID, p_content TEXT, p_type TEXT,
    p_reply_to UUID, p_attachment TEXT, p_event TEXT, p_data JSONB, p_at TIMESTAMPTZ, p_client TEXT
) RETURNS SETOF chat_messages LANGUAGE plpgsql AS $$
DECLARE
    v_seq BIGINT;
BEGIN
    UPDATE chat_conversations
       SET last_seq = last_seq + 1, last_message_at = p_at, activity_at = p_at, updated_at = p_at
     WHERE id = p_conversation AND deleted_at IS NULL
    RETURNING last_seq INTO v_seq;
    IF v_seq IS NULL THEN
        RETURN;
    END IF;
    IF p_sender IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM chat_participants
         WHERE conversation_id = p_conversation AND user_id = p_sender AND left_at IS NULL
    ) THEN
        RAISE EXCEPTION 'not a participant' USING ERRCODE = 'P0002';
    END IF;
    IF p_reply_to IS NOT NULL THEN
        UPDATE chat_messages SET reply_count = reply_count + 1 WHERE id = p_reply_to;
    END IF;
    RETURN QUERY
    INSERT INTO chat_messages (id, conversation_id, seq, sender_id, actor_id, content, message_type, reply_to_id,
                               attachment_url, system_event, system_data, created_at, client_id)
    VALUES (p_id, p_conversation, v_seq, p_sender, p_actor, p_content, p_type, p_reply_to,
            p_attachment, p_event, p_data, p_at, p_client)
    RETURNING *;
END
$$;
