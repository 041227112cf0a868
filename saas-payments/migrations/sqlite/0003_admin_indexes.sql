-- The admin site's lists: newest first (created or received, then the key), unfiltered or
-- by each filter, each served by an index; and the related rows of detail pages (a
-- subscription's invoice orders). Prefix searches of text keys use the primary and unique
-- indexes (SQLite's GLOB prefix optimisation).
CREATE INDEX payment_orders_created ON payment_orders (created_at, id);
CREATE INDEX payment_orders_state_created ON payment_orders (state, created_at, id);
CREATE INDEX payment_orders_strategy_created ON payment_orders (strategy_type, created_at, id);
CREATE INDEX payment_orders_subscription ON payment_orders (subscription_id, created_at) WHERE subscription_id IS NOT NULL;

CREATE INDEX payment_payouts_created ON payment_payouts (created_at, id);
CREATE INDEX payment_payouts_state_created ON payment_payouts (state, created_at, id);

CREATE INDEX payment_subscriptions_created ON payment_subscriptions (created_at, id);
CREATE INDEX payment_subscriptions_state_created ON payment_subscriptions (state, created_at, id);

CREATE INDEX payment_connected_accounts_created ON payment_connected_accounts (created_at, user_id);
CREATE INDEX payment_connected_accounts_status_created ON payment_connected_accounts (onboarding_status, created_at, user_id);

-- (state, received_at) becomes (state, received_at, id): it still serves the retry cron.
DROP INDEX payment_webhook_events_state;
CREATE INDEX payment_webhook_events_state ON payment_webhook_events (state, received_at, id);
CREATE INDEX payment_webhook_events_received ON payment_webhook_events (received_at, id);

CREATE INDEX payments_ledger_accounts_type ON payments_ledger_accounts (account_type, account_key);
CREATE INDEX payments_ledger_accounts_currency ON payments_ledger_accounts (currency, account_key);
