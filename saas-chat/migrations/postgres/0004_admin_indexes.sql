-- Indexes of the admin site: its lists newest first (all, by type, deleted or not), the
-- title prefix search, the dashboard counts, and every participation of a conversation.
CREATE INDEX chat_conversations_created ON chat_conversations (created_at, id);
CREATE INDEX chat_conversations_type_created ON chat_conversations (conversation_type, created_at, id);
CREATE INDEX chat_conversations_deleted_created ON chat_conversations ((deleted_at IS NOT NULL), created_at, id);
-- Open conversations: the dashboard count, and the "deleted: no" filter (PostgreSQL rewrites
-- `(deleted_at IS NOT NULL) = false` to `deleted_at IS NULL`, which the index above does not serve).
CREATE INDEX chat_conversations_open ON chat_conversations (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX chat_conversations_title ON chat_conversations (title text_pattern_ops);
CREATE INDEX chat_participants_conversation ON chat_participants (conversation_id, joined_at, id);
CREATE INDEX chat_messages_created ON chat_messages (created_at, id);
CREATE INDEX chat_messages_deleted_created ON chat_messages ((deleted_at IS NOT NULL), created_at, id);
