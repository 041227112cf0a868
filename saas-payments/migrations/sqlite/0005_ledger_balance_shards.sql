-- The platform's accounts (Stripe, escrow, revenue) take a posting from nearly every event.
-- Their credits, and every change of an account that may go negative, are added to one of
-- a few shard rows picked at random, so concurrent events do not queue on one row; a debit
-- that must not overdraw locks the shards, folds them into the account's row and checks the
-- total. An account's balance is its row's plus its shards'.
CREATE TABLE payments_ledger_balance_shards (
    account_key TEXT NOT NULL REFERENCES payments_ledger_accounts (account_key),
    shard INTEGER NOT NULL,
    balance_cents INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_key, shard)
);
