CREATE TABLE admin_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX admin_sessions_expires_at ON admin_sessions (expires_at);

CREATE TABLE admin_audit_log (
    id BLOB PRIMARY KEY NOT NULL,
    actor_id BLOB,
    actor_email TEXT NOT NULL,
    panel TEXT NOT NULL,
    object_id TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    message TEXT NOT NULL,
    before_values TEXT NOT NULL DEFAULT '{}',
    after_values TEXT NOT NULL DEFAULT '{}',
    input_values TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);
CREATE INDEX admin_audit_log_created_at ON admin_audit_log (created_at, id);
CREATE INDEX admin_audit_log_object ON admin_audit_log (object_id, created_at, id);
CREATE INDEX admin_audit_log_actor_email ON admin_audit_log (actor_email);
