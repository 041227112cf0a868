CREATE TABLE chat_conversations (
    id UUID PRIMARY KEY NOT NULL,
    conversation_type TEXT NOT NULL,
    title TEXT,
    direct_key TEXT UNIQUE,
    created_by UUID,
    participant_count BIGINT NOT NULL DEFAULT 0,
    last_seq BIGINT NOT NULL DEFAULT 0,
    last_message_at TIMESTAMPTZ,
    activity_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    deleted_at TIMESTAMPTZ
);

CREATE TABLE chat_participants (
    id UUID PRIMARY KEY NOT NULL,
    conversation_id UUID NOT NULL REFERENCES chat_conversations (id) ON DELETE CASCADE,
    user_id UUID NOT NULL,
    role TEXT,
    joined_at TIMESTAMPTZ NOT NULL,
    left_at TIMESTAMPTZ,
    last_read_at TIMESTAMPTZ,
    last_read_seq BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX chat_participants_active ON chat_participants (conversation_id, user_id) WHERE left_at IS NULL;
CREATE INDEX chat_participants_user ON chat_participants (user_id) WHERE left_at IS NULL;
CREATE INDEX chat_participants_joined ON chat_participants (conversation_id, joined_at, id) WHERE left_at IS NULL;

CREATE TABLE chat_messages (
    id UUID PRIMARY KEY NOT NULL,
    conversation_id UUID NOT NULL REFERENCES chat_conversations (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    sender_id UUID,
    actor_id UUID,
    content TEXT NOT NULL,
    message_type TEXT NOT NULL,
    reply_to_id UUID REFERENCES chat_messages (id),
    reply_count BIGINT NOT NULL DEFAULT 0,
    attachment_url TEXT,
    system_event TEXT,
    system_data JSONB,
    created_at TIMESTAMPTZ NOT NULL,
    edited_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX chat_messages_seq ON chat_messages (conversation_id, seq);
