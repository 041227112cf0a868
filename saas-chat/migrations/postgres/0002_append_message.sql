-- Appends a message in one call: the conversation row is locked by the sequence increment,
-- then the sender's membership is checked with a fresh snapshot (a removal committed while
-- this call waited for the lock is seen), then the message is inserted. Raises P0002 when the
-- sender is not an active participant; returns no row when the conversation is gone.
CREATE FUNCTION chat_append_message(
    p_conversation UUID, p_id UUID, p_sender UUID, p_actor UUID, p_content TEXT, p_type TEXT,
    p_reply_to UUID, p_attachment TEXT, p_event TEXT, p_data JSONB, p_at TIMESTAMPTZ
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
                               attachment_url, system_event, system_data, created_at)
    VALUES (p_id, p_conversation, v_seq, p_sender, p_actor, p_content, p_type, p_reply_to,
            p_attachment, p_event, p_data, p_at)
    RETURNING *;
END
$$;
