-- The same migration number as on PostgreSQL, where a function appends messages; SQLite appends them in a transaction of the store.
SELECT 1;
