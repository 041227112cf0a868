-- The admin site searches users by the start of their email with GLOB 'prefix*', which the
-- unique index on email already serves; its dashboard counts deactivated accounts, which
-- this partial index keeps small.
CREATE INDEX auth_users_inactive ON auth_users (date_joined) WHERE is_active = FALSE;
