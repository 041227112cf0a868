-- The admin site searches users by the start of their email with GLOB 'prefix*', which the
-- unique index on email already serves; the number is kept in step with PostgreSQL.
SELECT 1;
