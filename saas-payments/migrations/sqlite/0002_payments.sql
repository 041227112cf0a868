-- Payment objects: orders (with the strategy that drives them), their refunds, payouts to
-- payees, subscriptions, Stripe customers and Connect accounts, every state transition, the
-- Stripe webhook events received, and what reconciliation flagged.
CREATE TABLE payment_orders (
    id BLOB PRIMARY KEY NOT NULL,
    payer_id BLOB NOT NULL,
    payee_id BLOB,
    strategy_type TEXT NOT NULL,
    state TEXT NOT NULL,
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    platform_fee_cents INTEGER NOT NULL CHECK (platform_fee_cents >= 0),
    refunded_cents INTEGER NOT NULL DEFAULT 0,
    currency TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    reference_type TEXT,
    reference_id TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    subscription_id BLOB,
    stripe_payment_intent_id TEXT UNIQUE,
    stripe_invoice_id TEXT UNIQUE,
    client_secret TEXT,
    hold_expires_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX payment_orders_payer ON payment_orders (payer_id, created_at);
CREATE INDEX payment_orders_payee ON payment_orders (payee_id, created_at) WHERE payee_id IS NOT NULL;
CREATE INDEX payment_orders_state ON payment_orders (state, updated_at);
CREATE INDEX payment_orders_hold ON payment_orders (hold_expires_at) WHERE state = 'held';

CREATE TABLE payment_transitions (
    id BLOB PRIMARY KEY NOT NULL,
    object_type TEXT NOT NULL,
    object_id BLOB NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    action TEXT NOT NULL,
    actor_id BLOB,
    reason TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX payment_transitions_object ON payment_transitions (object_id, created_at);

CREATE TABLE payment_refunds (
    id BLOB PRIMARY KEY NOT NULL,
    order_id BLOB NOT NULL REFERENCES payment_orders (id),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    reason TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    stripe_refund_id TEXT UNIQUE,
    requested_by BLOB,
    failure_reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX payment_refunds_order ON payment_refunds (order_id);
-- While a refund of an order is under way no other starts.
CREATE UNIQUE INDEX payment_refunds_one_open ON payment_refunds (order_id) WHERE state IN ('requested', 'processing');

CREATE TABLE payment_payouts (
    id BLOB PRIMARY KEY NOT NULL,
    payee_id BLOB NOT NULL,
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    currency TEXT NOT NULL,
    state TEXT NOT NULL,
    order_id BLOB UNIQUE REFERENCES payment_orders (id),
    period TEXT,
    stripe_transfer_id TEXT UNIQUE,
    failure_reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (payee_id, currency, period)
);
CREATE INDEX payment_payouts_payee ON payment_payouts (payee_id, created_at);
CREATE INDEX payment_payouts_state ON payment_payouts (state, updated_at);

CREATE TABLE payment_subscriptions (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL,
    payee_id BLOB,
    price_id TEXT NOT NULL,
    state TEXT NOT NULL,
    stripe_subscription_id TEXT UNIQUE,
    stripe_customer_id TEXT NOT NULL,
    stripe_status TEXT NOT NULL DEFAULT '',
    stripe_event_created INTEGER NOT NULL DEFAULT 0,
    cancel_at_period_end BOOLEAN NOT NULL DEFAULT 0,
    current_period_end TEXT,
    client_secret TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX payment_subscriptions_user ON payment_subscriptions (user_id, created_at);

CREATE TABLE payment_customers (
    user_id BLOB PRIMARY KEY NOT NULL,
    stripe_customer_id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE payment_connected_accounts (
    user_id BLOB PRIMARY KEY NOT NULL,
    stripe_account_id TEXT NOT NULL UNIQUE,
    onboarding_status TEXT NOT NULL,
    charges_enabled BOOLEAN NOT NULL DEFAULT 0,
    payouts_enabled BOOLEAN NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE payment_webhook_events (
    id TEXT PRIMARY KEY NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    stripe_created INTEGER NOT NULL DEFAULT 0,
    received_at TEXT NOT NULL,
    processed_at TEXT
);
CREATE INDEX payment_webhook_events_state ON payment_webhook_events (state, received_at);

CREATE TABLE payment_reconciliation_issues (
    id BLOB PRIMARY KEY NOT NULL,
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    resolved BOOLEAN NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    UNIQUE (object_type, object_id, kind)
);
