-- The admin site searches users by the start of their email: LIKE 'prefix%' needs an
-- index with pattern operators whatever the database's collation.
CREATE INDEX auth_users_email_pattern ON auth_users (email text_pattern_ops);

-- The dashboard counts deactivated accounts: a partial index keeps that read small.
CREATE INDEX auth_users_inactive ON auth_users (date_joined) WHERE is_active = FALSE;
