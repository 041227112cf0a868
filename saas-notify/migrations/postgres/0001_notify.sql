CREATE TABLE notify_types (
    id BIGSERIAL PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    title_template TEXT NOT NULL,
    body_template TEXT NOT NULL,
    push_enabled BOOLEAN NOT NULL DEFAULT TRUE,
    email_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    websocket_enabled BOOLEAN NOT NULL DEFAULT TRUE,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE notify_notifications (
    id UUID PRIMARY KEY NOT NULL,
    recipient_id UUID NOT NULL,
    type_id BIGINT NOT NULL REFERENCES notify_types (id),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    data JSONB NOT NULL,
    actor_id UUID,
    source_type TEXT,
    source_id TEXT,
    is_read BOOLEAN NOT NULL DEFAULT FALSE,
    read_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX notify_notifications_inbox ON notify_notifications (recipient_id, created_at DESC, id DESC);
CREATE INDEX notify_notifications_unread ON notify_notifications (recipient_id) WHERE NOT is_read;
CREATE INDEX notify_notifications_read_at ON notify_notifications (read_at) WHERE is_read;
CREATE INDEX notify_notifications_type ON notify_notifications (type_id);

-- One row per user: the unread count, moved in the transaction of every change.
CREATE TABLE notify_unread_counts (
    user_id UUID PRIMARY KEY NOT NULL,
    unread BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE notify_deliveries (
    id UUID PRIMARY KEY NOT NULL,
    notification_id UUID REFERENCES notify_notifications (id) ON DELETE SET NULL,
    recipient_id UUID NOT NULL,
    type_key TEXT NOT NULL,
    channel TEXT NOT NULL,
    device_id UUID,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    data JSONB NOT NULL,
    status TEXT NOT NULL,
    provider_message_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX notify_deliveries_status ON notify_deliveries (status, updated_at);
CREATE INDEX notify_deliveries_notification ON notify_deliveries (notification_id);

CREATE TABLE notify_devices (
    id UUID PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL,
    platform TEXT NOT NULL,
    token TEXT NOT NULL,
    device_id TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    UNIQUE (platform, token)
);
CREATE INDEX notify_devices_user ON notify_devices (user_id, created_at, id);

CREATE TABLE notify_preferences (
    user_id UUID NOT NULL,
    type_key TEXT NOT NULL,
    channel TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    PRIMARY KEY (user_id, type_key, channel)
);

INSERT INTO notify_types (key, display_name, title_template, body_template, push_enabled, email_enabled, websocket_enabled, created_at, updated_at) VALUES
    ('welcome', 'Welcome', 'Welcome to the app!', 'Thanks for joining. We''re excited to have you.', TRUE, TRUE, FALSE, '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00'),
    ('new_message', 'New message', 'New message from {{ sender_name }}', '{{ preview }}', TRUE, FALSE, TRUE, '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00'),
    ('system_alert', 'System alert', '{{ title }}', '{{ message }}', TRUE, TRUE, TRUE, '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00'),
    ('payment_succeeded', 'Payment succeeded', 'Payment received', 'Your payment of {{ amount }} succeeded.', TRUE, TRUE, TRUE, '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00'),
    ('funds_released', 'Funds released', 'Funds released', '{{ amount }} was released to you.', TRUE, TRUE, TRUE, '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00'),
    ('refund_issued', 'Refund issued', 'Refund issued', 'A refund of {{ amount }} was issued.', TRUE, TRUE, TRUE, '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00');
