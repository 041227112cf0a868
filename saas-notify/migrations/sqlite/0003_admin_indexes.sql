-- Indexes of the admin site: its lists newest first (all, and by each filter: read, type,
-- delivery status, channel), and its dashboard counts. The type filter matches the type's
-- id as text (admin filters bind text), so its index is on that expression.
-- Type keys are searched by prefix through their UNIQUE index.
CREATE INDEX notify_types_created ON notify_types (created_at, key);
CREATE INDEX notify_notifications_created ON notify_notifications (created_at, id);
CREATE INDEX notify_notifications_read_created ON notify_notifications (is_read, created_at, id);
CREATE INDEX notify_notifications_type_created ON notify_notifications ((CAST(type_id AS TEXT)), created_at, id);
CREATE INDEX notify_deliveries_created ON notify_deliveries (created_at, id);
CREATE INDEX notify_deliveries_status_created ON notify_deliveries (status, created_at, id);
CREATE INDEX notify_deliveries_channel_created ON notify_deliveries (channel, created_at, id);
