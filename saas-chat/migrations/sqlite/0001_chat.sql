CREATE TABLE chat_conversations (
    id BLOB PRIMARY KEY NOT NULL,
    conversation_type TEXT NOT NULL,
    title TEXT,
    direct_key TEXT UNIQUE,
    created_by BLOB,
    participant_count INTEGER NOT NULL DEFAULT 0,
    last_seq INTEGER NOT NULL DEFAULT 0,
    last_message_at TEXT,
    activity_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT
);

CREATE TABLE chat_participants (
    id BLOB PRIMARY KEY NOT NULL,
    conversation_id BLOB NOT NULL REFERENCES chat_conversations (id) ON DELETE CASCADE,
    user_id BLOB NOT NULL,
    role TEXT,
    joined_at TEXT NOT NULL,
    left_at TEXT,
    last_read_at TEXT,
    last_read_seq INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX chat_participants_active ON chat_participants (conversation_id, user_id) WHERE left_at IS NULL;
CREATE INDEX chat_participants_user ON chat_participants (user_id) WHERE left_at IS NULL;
CREATE INDEX chat_participants_joined ON chat_participants (conversation_id, joined_at, id) WHERE left_at IS NULL;

CREATE TABLE chat_messages (
    id BLOB PRIMARY KEY NOT NULL,
    conversation_id BLOB NOT NULL REFERENCES chat_conversations (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    sender_id BLOB,
    actor_id BLOB,
    content TEXT NOT NULL,
    message_type TEXT NOT NULL,
    reply_to_id BLOB REFERENCES chat_messages (id),
    reply_count INTEGER NOT NULL DEFAULT 0,
    attachment_url TEXT,
    system_event TEXT,
    system_data TEXT,
    created_at TEXT NOT NULL,
    edited_at TEXT,
    deleted_at TEXT
);
CREATE UNIQUE INDEX chat_messages_seq ON chat_messages (conversation_id, seq);
