-- Double-entry ledger: an entry moves a positive amount from a debit account to a credit
-- account; an account's balance (credits - debits) is kept on its row, moved in the same
-- transaction as the entry, so it reads in constant time. Entries are never changed.
CREATE TABLE payments_ledger_accounts (
    account_key TEXT PRIMARY KEY NOT NULL,
    account_type TEXT NOT NULL,
    user_id UUID,
    currency TEXT NOT NULL,
    balance_cents BIGINT NOT NULL DEFAULT 0,
    may_go_negative BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX payments_ledger_accounts_user ON payments_ledger_accounts (user_id) WHERE user_id IS NOT NULL;

CREATE TABLE payments_ledger_entries (
    id UUID PRIMARY KEY NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    debit_account TEXT NOT NULL REFERENCES payments_ledger_accounts (account_key),
    credit_account TEXT NOT NULL REFERENCES payments_ledger_accounts (account_key),
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    currency TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    CHECK (debit_account <> credit_account)
);
CREATE INDEX payments_ledger_entries_debit ON payments_ledger_entries (debit_account, created_at);
CREATE INDEX payments_ledger_entries_credit ON payments_ledger_entries (credit_account, created_at);

CREATE FUNCTION payments_ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are never updated or deleted';
END
$$;
CREATE TRIGGER payments_ledger_entries_immutable BEFORE UPDATE OR DELETE ON payments_ledger_entries
    FOR EACH ROW EXECUTE FUNCTION payments_ledger_immutable();
