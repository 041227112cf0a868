CREATE TABLE auth_users (
    id UUID PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    is_email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    is_staff BOOLEAN NOT NULL DEFAULT FALSE,
    date_joined TIMESTAMPTZ NOT NULL,
    last_login TIMESTAMPTZ,
    deactivated_at TIMESTAMPTZ,
    deactivation_reason TEXT
);
CREATE INDEX auth_users_date_joined ON auth_users (date_joined);

CREATE TABLE auth_profiles (
    user_id UUID PRIMARY KEY NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    username TEXT UNIQUE,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    avatar_url TEXT NOT NULL DEFAULT '',
    bio TEXT NOT NULL DEFAULT '',
    timezone TEXT NOT NULL DEFAULT 'UTC',
    preferences JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE auth_linked_accounts (
    id UUID PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    provider_user_id TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (provider, provider_user_id)
);
CREATE INDEX auth_linked_accounts_user ON auth_linked_accounts (user_id);

CREATE TABLE auth_refresh_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    family_id TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX auth_refresh_tokens_user ON auth_refresh_tokens (user_id);
CREATE INDEX auth_refresh_tokens_family ON auth_refresh_tokens (family_id);
CREATE INDEX auth_refresh_tokens_expires ON auth_refresh_tokens (expires_at);

CREATE TABLE auth_one_time_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX auth_one_time_tokens_user ON auth_one_time_tokens (user_id, purpose);
CREATE INDEX auth_one_time_tokens_expires ON auth_one_time_tokens (expires_at);

CREATE TABLE auth_biometric_credentials (
    id UUID PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    device_name TEXT NOT NULL DEFAULT '',
    algorithm TEXT NOT NULL,
    public_key BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    UNIQUE (user_id, device_id)
);

CREATE TABLE auth_biometric_challenges (
    challenge_hash TEXT PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    credential_id UUID,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX auth_biometric_challenges_expires ON auth_biometric_challenges (expires_at);
