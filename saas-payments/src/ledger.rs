//! The double-entry ledger: accounts, postings, balances.
//!
//! A posting moves a positive amount from a debit account to a credit account; a balance is
//! credits − debits, kept on the account's row and moved in the posting's transaction, so it
//! reads in constant time at any ledger size. Every posting has a unique idempotency key:
//! recording it twice is a no-op. Only `external_stripe` may go negative; any other account
//! refuses an overdraft (409 `payments.insufficient_funds`) and the whole batch is undone.
//! Entries are never updated or deleted (the database refuses it); refunds and reversals
//! post new entries.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use saas_core::{Db, ServiceError, ServiceResult, ValidationErrors, with_pool};

/// The kinds of ledger account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountType {
    /// Money at Stripe, outside the platform's books (may go negative).
    ExternalStripe,
    /// Money the platform holds for others.
    PlatformEscrow,
    /// The platform's fees.
    PlatformRevenue,
    /// What the platform owes one user.
    UserBalance,
}

impl AccountType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExternalStripe => "external_stripe",
            Self::PlatformEscrow => "platform_escrow",
            Self::PlatformRevenue => "platform_revenue",
            Self::UserBalance => "user_balance",
        }
    }
}

/// One ledger account: a type, a currency (ISO 4217, lower case) and, for user balances,
/// the user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Account {
    /// Its type.
    pub kind: AccountType,
    /// The user of a `user_balance`.
    pub user_id: Option<Uuid>,
    /// Its currency.
    pub currency: String,
}

impl Account {
    fn platform(kind: AccountType, currency: &str) -> Self {
        Self { kind, user_id: None, currency: currency.trim().to_ascii_lowercase() }
    }

    /// Money at Stripe.
    pub fn stripe(currency: &str) -> Self {
        Self::platform(AccountType::ExternalStripe, currency)
    }

    /// The platform's escrow.
    pub fn escrow(currency: &str) -> Self {
        Self::platform(AccountType::PlatformEscrow, currency)
    }

    /// The platform's revenue.
    pub fn revenue(currency: &str) -> Self {
        Self::platform(AccountType::PlatformRevenue, currency)
    }

    /// A user's balance.
    pub fn user(user_id: Uuid, currency: &str) -> Self {
        Self { kind: AccountType::UserBalance, user_id: Some(user_id), currency: currency.trim().to_ascii_lowercase() }
    }

    /// The account's key: `platform_escrow:usd`, `user_balance:{id}:usd`.
    pub fn key(&self) -> String {
        match self.user_id {
            Some(user) => format!("{}:{user}:{}", self.kind.as_str(), self.currency),
            None => format!("{}:{}", self.kind.as_str(), self.currency),
        }
    }

    /// Whether its balance is spread over shard rows: the platform's accounts, which nearly
    /// every event moves.
    pub fn is_sharded(&self) -> bool {
        self.user_id.is_none()
    }

    /// Whether its balance may fall below zero.
    pub fn may_go_negative(&self) -> bool {
        self.kind == AccountType::ExternalStripe
    }
}

/// A movement of `amount_cents` from `debit` to `credit`, recorded once per key.
#[derive(Debug, Clone)]
pub struct Posting {
    /// The account the money leaves.
    pub debit: Account,
    /// The account the money reaches.
    pub credit: Account,
    /// A positive amount in minor units.
    pub amount_cents: i64,
    /// Unique per movement (`payment:{id}:fee`): a second recording is a no-op.
    pub idempotency_key: String,
    /// What it is, for people.
    pub description: String,
}

impl Posting {
    /// A posting of `amount_cents` from `debit` to `credit` under `key`.
    pub fn new(debit: Account, credit: Account, amount_cents: i64, key: impl Into<String>) -> Self {
        let idempotency_key = key.into();
        Self { description: idempotency_key.clone(), debit, credit, amount_cents, idempotency_key }
    }

    /// Sets the description.
    pub fn described(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    fn check(&self, errors: &mut ValidationErrors) {
        if self.amount_cents <= 0 {
            errors.add("amount_cents", format!("{}: the amount must be positive.", self.idempotency_key));
        }
        if self.debit.currency != self.credit.currency {
            errors.add("currency", format!("{}: both accounts must be in one currency.", self.idempotency_key));
        }
        if self.debit == self.credit {
            errors.add("account", format!("{}: an entry needs two accounts.", self.idempotency_key));
        }
        if self.idempotency_key.trim().is_empty() {
            errors.add("idempotency_key", "Every posting needs an idempotency key.");
        }
    }
}

/// Why a batch of postings was undone.
pub(crate) enum PostError {
    Overdraft(String),
    Sql(sqlx::Error),
}

impl From<sqlx::Error> for PostError {
    fn from(err: sqlx::Error) -> Self {
        Self::Sql(err)
    }
}

impl From<PostError> for ServiceError {
    fn from(err: PostError) -> Self {
        match err {
            PostError::Overdraft(account) => {
                ServiceError::conflict("payments.insufficient_funds", "The account does not hold enough funds.")
                    .with_detail("account", account)
            }
            PostError::Sql(err) => err.into(),
        }
    }
}

/// Checks a batch before it is recorded.
pub(crate) fn check_postings(postings: &[Posting]) -> ServiceResult<()> {
    let mut errors = ValidationErrors::default();
    for posting in postings {
        posting.check(&mut errors);
    }
    if errors.is_empty() { Ok(()) } else { Err(errors.into_error()) }
}

/// Shard rows per platform account: enough that concurrent events rarely meet on one.
const SHARDS: i32 = 16;

/// A shard for a change, at random.
pub(crate) fn pick_shard() -> i32 {
    rand::random_range(0..SHARDS)
}

/// The SQL of account `a`'s balance: its row's plus its shards' (a literal, for `concat!`).
macro_rules! balance_sql {
    () => {
        "(a.balance_cents + COALESCE((SELECT CAST(SUM(s.balance_cents) AS BIGINT) \
         FROM payments_ledger_balance_shards s WHERE s.account_key = a.account_key), 0))"
    };
}
pub(crate) use balance_sql;

/// The SQL of account `a`'s balance: its row's plus its shards'.
pub const BALANCE: &str = balance_sql!();

/// The accounts of a batch, each once, in key order: the one lock order of every batch.
pub(crate) fn batch_accounts(postings: &[Posting]) -> Vec<&Account> {
    let mut accounts: Vec<&Account> = postings.iter().flat_map(|p| [&p.debit, &p.credit]).collect();
    accounts.sort_by_key(|account| account.key());
    accounts.dedup_by_key(|account| account.key());
    accounts
}

/// Records checked `$postings` inside the open transaction `$tx` (whose first statement
/// already wrote, on SQLite); evaluates to `Result<Vec<bool>, PostError>`. Accounts are
/// created on first use, the entries inserted (a recorded key is skipped), and only then is
/// each account's balance moved by its net change, one update per account in key order —
/// the row locks are taken last, in one order for every batch, and held only until the
/// caller commits. A net debit an account may not carry undoes the batch.
macro_rules! post_in_tx {
    ($tx:expr, $postings:expr) => {
        async {
            let postings: &[$crate::ledger::Posting] = $postings;
            let now = ::chrono::Utc::now();
            let accounts = $crate::ledger::batch_accounts(postings);
            for account in &accounts {
                ::sqlx::query(
                    // The existence check reads the committed row without waiting; an insert
                    // conflicting with a row another transaction is updating would wait for it.
                    "INSERT INTO payments_ledger_accounts (account_key, account_type, user_id, currency, balance_cents, \
                     may_go_negative, created_at, updated_at) SELECT $1, $2, $3, $4, 0, $5, $6, $6 \
                     WHERE NOT EXISTS (SELECT 1 FROM payments_ledger_accounts WHERE account_key = $1) \
                     ON CONFLICT (account_key) DO NOTHING")
                    .bind(account.key()).bind(account.kind.as_str()).bind(account.user_id).bind(&account.currency)
                    .bind(account.may_go_negative()).bind(now)
                    .execute(&mut *$tx).await?;
            }
            let mut recorded = Vec::with_capacity(postings.len());
            let mut net: ::std::collections::BTreeMap<String, i64> = ::std::collections::BTreeMap::new();
            for posting in postings {
                let inserted = ::sqlx::query(
                    "INSERT INTO payments_ledger_entries (id, idempotency_key, debit_account, credit_account, amount_cents, \
                     currency, description, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (idempotency_key) DO NOTHING")
                    .bind(::uuid::Uuid::now_v7()).bind(&posting.idempotency_key).bind(posting.debit.key())
                    .bind(posting.credit.key()).bind(posting.amount_cents).bind(&posting.debit.currency)
                    .bind(&posting.description).bind(now)
                    .execute(&mut *$tx).await?
                    .rows_affected() == 1;
                if inserted {
                    *net.entry(posting.debit.key()).or_default() -= posting.amount_cents;
                    *net.entry(posting.credit.key()).or_default() += posting.amount_cents;
                }
                recorded.push(inserted);
            }
            for account in &accounts {
                let key = account.key();
                let change = net.get(&key).copied().unwrap_or(0);
                if change == 0 {
                    continue;
                }
                if account.is_sharded() && (change > 0 || account.may_go_negative()) {
                    // No check needed: added to a shard, beside the other events' changes.
                    ::sqlx::query(
                        "INSERT INTO payments_ledger_balance_shards (account_key, shard, balance_cents) VALUES ($1, $2, $3) \
                         ON CONFLICT (account_key, shard) DO UPDATE \
                         SET balance_cents = payments_ledger_balance_shards.balance_cents + excluded.balance_cents")
                        .bind(&key).bind($crate::ledger::pick_shard()).bind(change)
                        .execute(&mut *$tx).await?;
                    continue;
                }
                // The row and then the shards are locked (a no-op update returns what each shard
                // holds); the shards are taken out by exactly what was read and folded into the
                // row, which is checked with them.
                let mut folded = 0i64;
                if account.is_sharded() {
                    // The row first: checked changes of one account queue here, never on its
                    // shards (which two of them could lock in different orders).
                    ::sqlx::query("UPDATE payments_ledger_accounts SET updated_at = updated_at WHERE account_key = $1")
                        .bind(&key).execute(&mut *$tx).await?;
                    let shards: Vec<(i32, i64)> = ::sqlx::query_as(
                        "UPDATE payments_ledger_balance_shards SET balance_cents = balance_cents \
                         WHERE account_key = $1 RETURNING shard, balance_cents")
                        .bind(&key).fetch_all(&mut *$tx).await?;
                    for (shard, amount) in shards.into_iter().filter(|(_, amount)| *amount != 0) {
                        ::sqlx::query(
                            "UPDATE payments_ledger_balance_shards SET balance_cents = balance_cents - $3 \
                             WHERE account_key = $1 AND shard = $2")
                            .bind(&key).bind(shard).bind(amount)
                            .execute(&mut *$tx).await?;
                        folded += amount;
                    }
                }
                let moved = ::sqlx::query(
                    "UPDATE payments_ledger_accounts SET balance_cents = balance_cents + $2, updated_at = $3 \
                     WHERE account_key = $1 AND ($4 >= 0 OR may_go_negative OR balance_cents + $2 >= 0)")
                    .bind(&key).bind(change + folded).bind(now).bind(change)
                    .execute(&mut *$tx).await?;
                if moved.rows_affected() == 0 {
                    return Err($crate::ledger::PostError::Overdraft(key));
                }
            }
            Ok::<Vec<bool>, $crate::ledger::PostError>(recorded)
        }
    };
}
pub(crate) use post_in_tx;

/// The ledger tables.
#[derive(Clone, Debug)]
pub struct Ledger {
    db: Db,
}

impl Ledger {
    /// The ledger on `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Records postings in one transaction; returns, for each, whether it was recorded now
    /// (`false`: its key was recorded before, nothing moved). An overdraft undoes the batch.
    pub async fn post(&self, postings: &[Posting]) -> ServiceResult<Vec<bool>> {
        check_postings(postings)?;
        let result: Result<Vec<bool>, PostError> = with_pool!(&self.db, pool => async {
            let mut tx = pool.begin().await?;
            let recorded = post_in_tx!(tx, postings).await?;
            tx.commit().await?;
            Ok(recorded)
        }.await);
        Ok(result?)
    }

    /// An account's balance (credits − debits); 0 for an account with no entries.
    pub async fn balance(&self, account: &Account) -> ServiceResult<i64> {
        let balance: Option<i64> = with_pool!(&self.db, pool => sqlx::query_scalar(
            concat!("SELECT ", balance_sql!(), " FROM payments_ledger_accounts a WHERE a.account_key = $1"))
            .bind(account.key()).fetch_optional(pool).await)?;
        Ok(balance.unwrap_or(0))
    }

    /// A user's balances: `(currency, cents)` by currency.
    pub async fn user_balances(&self, user_id: Uuid) -> ServiceResult<Vec<(String, i64)>> {
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, (String, i64)>(
            "SELECT currency, balance_cents FROM payments_ledger_accounts \
             WHERE account_type = 'user_balance' AND user_id = $1 ORDER BY currency")
            .bind(user_id).fetch_all(pool).await)?)
    }

    /// The sum of every account's balance, by currency: zero in a balanced ledger.
    pub async fn totals(&self) -> ServiceResult<Vec<(String, i64)>> {
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, (String, i64)>(
            concat!("SELECT a.currency, CAST(SUM(", balance_sql!(), ") AS BIGINT) FROM payments_ledger_accounts a \
             GROUP BY a.currency ORDER BY a.currency"))
            .fetch_all(pool).await)?)
    }

    /// How many entries the ledger holds.
    pub async fn entry_count(&self) -> ServiceResult<i64> {
        Ok(with_pool!(&self.db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM payments_ledger_entries")
            .fetch_one(pool).await)?)
    }
}
