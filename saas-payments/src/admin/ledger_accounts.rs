//! The `ledger-accounts` panel: the ledger's accounts by type and currency, with their
//! balances, and an account's last 100 entries.

use async_trait::async_trait;
use uuid::Uuid;

use saas_core::admin::{
    AdminPanel, Column, Detail, Filter, KeyKind, ListPage, ListQuery, Search, SqlList, SqlValue, table,
};
use saas_core::{AppContext, ServiceResult};

use super::{GROUP, People, filter_of, merge_money, money_cells, name_people, section, with_cells};
use crate::ledger::{AccountType, balance_sql};

/// Entries shown on an account's page.
const ENTRIES: usize = 100;

/// Currencies offered by the currency filter (any other works in the URL: `?currency=xyz`).
const CURRENCIES: [&str; 16] =
    ["usd", "eur", "gbp", "cad", "aud", "nzd", "chf", "jpy", "sek", "nok", "dkk", "pln", "sgd", "hkd", "mxn", "brl"];

/// Ledger accounts.
pub(super) struct LedgerAccountsPanel {
    list: SqlList,
}

impl LedgerAccountsPanel {
    /// The panel.
    pub(super) fn new() -> Self {
        // Ordered by key (no timestamp): user balances, then the platform's accounts.
        let list = SqlList::new(
            concat!(
                "(SELECT a.account_key, a.account_type, a.user_id, a.currency, ",
                balance_sql!(),
                " AS balance_cents FROM payments_ledger_accounts a) accounts"
            ),
            "account_key",
            KeyKind::Text,
        )
        .columns(&["account_key", "account_type", "user_id", "currency", "balance_cents", "currency"])
        .search(Search::Prefix("account_key"))
        .filter_text("type", "account_type")
        .filter_text("currency", "currency");
        Self { list }
    }
}

#[async_trait]
impl AdminPanel for LedgerAccountsPanel {
    fn slug(&self) -> &'static str {
        "ledger-accounts"
    }

    fn title(&self) -> &'static str {
        "Ledger accounts"
    }

    fn group(&self) -> &'static str {
        GROUP
    }

    fn columns(&self) -> Vec<Column> {
        ["Account", "Type", "User", "Currency", "Balance"].map(|label| Column { label }).to_vec()
    }

    fn search_hint(&self) -> Option<&'static str> {
        Some("account key prefix (platform_escrow…) or a user id")
    }

    fn filters(&self) -> Vec<Filter> {
        let types = [
            AccountType::ExternalStripe,
            AccountType::PlatformEscrow,
            AccountType::PlatformRevenue,
            AccountType::UserBalance,
        ];
        vec![
            filter_of("type", "Type", types.map(|t| t.as_str().to_owned())),
            filter_of("currency", "Currency", CURRENCIES.map(str::to_owned)),
        ]
    }

    async fn list(&self, ctx: &AppContext, query: &ListQuery) -> ServiceResult<ListPage> {
        // A user id finds the user's balances: their keys are `user_balance:{id}:{currency}`.
        let user = query.search.as_deref().and_then(|term| Uuid::parse_str(term.trim()).ok());
        let mut page = match user {
            Some(user) => {
                let query = ListQuery { search: Some(format!("user_balance:{user}:")), ..query.clone() };
                self.list.fetch(ctx.db(), &query).await?
            }
            None => self.list.fetch(ctx.db(), query).await?,
        };
        with_cells(&mut page, |rows| merge_money(rows, 4));
        name_people(ctx, &mut page, &[2]).await;
        Ok(page)
    }

    async fn detail(&self, ctx: &AppContext, id: &str) -> ServiceResult<Option<Detail>> {
        let key = vec![SqlValue::Text(id.to_owned())];
        let found = table(
            ctx.db(),
            concat!(
                "SELECT a.account_key, a.account_type, a.user_id, a.currency, ",
                balance_sql!(),
                ", a.may_go_negative, a.created_at, a.updated_at FROM payments_ledger_accounts a WHERE a.account_key = $1"
            ),
            &key,
        )
        .await?;
        let Some([account, kind, user, currency, balance, negative, created, updated]) =
            found.into_iter().next().and_then(|row| <[String; 8]>::try_from(row).ok())
        else {
            return Ok(None);
        };
        let user = match Uuid::parse_str(&user) {
            Ok(id) => People::of(ctx, [id]).await.long(id),
            Err(_) => user,
        };
        // The newest entries on either side, each side served by its (account, created_at) index.
        let sql = format!(
            "SELECT created_at, direction, other_account, amount_cents, currency, idempotency_key, description FROM (\
             SELECT * FROM (SELECT id, created_at, 'debit' AS direction, credit_account AS other_account, \
             -amount_cents AS amount_cents, currency, idempotency_key, description FROM payments_ledger_entries \
             WHERE debit_account = $1 ORDER BY created_at DESC LIMIT {ENTRIES}) AS debits \
             UNION ALL SELECT * FROM (SELECT id, created_at, 'credit' AS direction, debit_account AS other_account, \
             amount_cents, currency, idempotency_key, description FROM payments_ledger_entries \
             WHERE credit_account = $1 ORDER BY created_at DESC LIMIT {ENTRIES}) AS credits\
             ) AS entries ORDER BY created_at DESC, id DESC LIMIT {ENTRIES}"
        );
        let mut rows = table(ctx.db(), &sql, &key).await?;
        merge_money(&mut rows, 3);
        let entries = section(
            &format!("Last {ENTRIES} entries"),
            &["At", "Side", "Other account", "Amount", "Key", "Description"],
            rows,
            |cells| cells.get(2).map(|other| format!("/admin/ledger-accounts/{other}/")),
        );
        let detail = Detail::new(format!("Ledger account {account}"))
            .field("Account", &account)
            .field("Type", kind)
            .field("User", user)
            .field("Currency", &currency)
            .field("Balance", money_cells(&balance, &currency))
            .field("May go negative", negative)
            .field("Created", created)
            .field("Updated", updated)
            .section(entries);
        Ok(Some(detail))
    }
}
