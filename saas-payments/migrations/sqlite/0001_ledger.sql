-- Double-entry ledger: an entry moves a positive amount from a debit account to a credit
-- account; an account's balance (credits - debits) is kept on its row, moved in the same
-- transaction as the entry, so it reads in constant time. Entries are never changed.
CREATE TABLE payments_ledger_accounts (
    account_key TEXT PRIMARY KEY NOT NULL,
    account_type TEXT NOT NULL,
    user_id BLOB,
    currency TEXT NOT NULL,
    balance_cents INTEGER NOT NULL DEFAULT 0,
    may_go_negative BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX payments_ledger_accounts_user ON payments_ledger_accounts (user_id) WHERE user_id IS NOT NULL;

CREATE TABLE payments_ledger_entries (
    id BLOB PRIMARY KEY NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    debit_account TEXT NOT NULL REFERENCES payments_ledger_accounts (account_key),
    credit_account TEXT NOT NULL REFERENCES payments_ledger_accounts (account_key),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    currency TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at TEXT NOT NULL,
    CHECK (debit_account <> credit_account)
);
CREATE INDEX payments_ledger_entries_debit ON payments_ledger_entries (debit_account, created_at);
CREATE INDEX payments_ledger_entries_credit ON payments_ledger_entries (credit_account, created_at);

CREATE TRIGGER payments_ledger_entries_no_update BEFORE UPDATE ON payments_ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are never updated or deleted');
END;
CREATE TRIGGER payments_ledger_entries_no_delete BEFORE DELETE ON payments_ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are never updated or deleted');
END;
