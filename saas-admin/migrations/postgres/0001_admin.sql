CREATE TABLE admin_sessions (
    id TEXT PRIMARY KEY,
    user_id UUID NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX admin_sessions_expires_at ON admin_sessions (expires_at);

CREATE TABLE admin_audit_log (
    id UUID PRIMARY KEY,
    actor_id UUID,
    actor_email TEXT NOT NULL,
    panel TEXT NOT NULL,
    object_id TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    message TEXT NOT NULL,
    before_values JSONB NOT NULL DEFAULT '{}',
    after_values JSONB NOT NULL DEFAULT '{}',
    input_values JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX admin_audit_log_created_at ON admin_audit_log (created_at, id);
CREATE INDEX admin_audit_log_object ON admin_audit_log (object_id, created_at, id);
CREATE INDEX admin_audit_log_actor_email ON admin_audit_log (actor_email text_pattern_ops);
