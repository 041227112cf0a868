-- The admin site searches users by the start of their email: LIKE 'prefix%' needs an
-- index with pattern operators whatever the database's collation.
CREATE INDEX auth_users_email_pattern ON auth_users (email text_pattern_ops);
