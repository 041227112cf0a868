//! The `connected-accounts` panel: payees' Stripe Connect accounts by onboarding status,
//! an account with the user's balances and payouts.

use async_trait::async_trait;

use saas_core::admin::{
    AdminPanel, Column, Detail, Filter, KeyKind, ListPage, ListQuery, Search, SqlList, SqlValue, table,
};
use saas_core::{AppContext, ServiceResult};

use super::{GROUP, People, at, filter_of, link, merge_money, name_people, object_id, section};
use crate::service::PaymentsService;
use crate::states::OnboardingStatus;

/// Payouts shown on an account's page.
const PAYOUTS: usize = 100;

/// Stripe Connect accounts of payees.
pub(super) struct ConnectedAccountsPanel {
    list: SqlList,
}

impl ConnectedAccountsPanel {
    /// The panel.
    pub(super) fn new() -> Self {
        let list = SqlList::new("payment_connected_accounts", "user_id", KeyKind::Uuid)
            .order_by("created_at")
            .columns(&[
                "user_id",
                "stripe_account_id",
                "onboarding_status",
                "charges_enabled",
                "payouts_enabled",
                "created_at",
            ])
            .search(Search::Key)
            .search(Search::Exact("stripe_account_id"))
            .filter_text("onboarding_status", "onboarding_status");
        Self { list }
    }
}

#[async_trait]
impl AdminPanel for ConnectedAccountsPanel {
    fn slug(&self) -> &'static str {
        "connected-accounts"
    }

    fn title(&self) -> &'static str {
        "Connected accounts"
    }

    fn group(&self) -> &'static str {
        GROUP
    }

    fn columns(&self) -> Vec<Column> {
        ["User", "Stripe account", "Onboarding", "Charges", "Payouts", "Created"].map(|label| Column { label }).to_vec()
    }

    fn search_hint(&self) -> Option<&'static str> {
        Some("user id or Stripe account id (acct_…)")
    }

    fn filters(&self) -> Vec<Filter> {
        vec![filter_of("onboarding_status", "Onboarding", OnboardingStatus::ALL.iter().map(|s| s.as_str().to_owned()))]
    }

    async fn list(&self, ctx: &AppContext, query: &ListQuery) -> ServiceResult<ListPage> {
        let mut page = self.list.fetch(ctx.db(), query).await?;
        name_people(ctx, &mut page, &[0]).await;
        Ok(page)
    }

    async fn detail(&self, ctx: &AppContext, id: &str) -> ServiceResult<Option<Detail>> {
        let Ok(user) = object_id(id, "connected account") else { return Ok(None) };
        let service = PaymentsService::get(ctx)?;
        let Some(account) = service.connected_account(user).await? else { return Ok(None) };
        let people = People::of(ctx, [user]).await;
        let owner = [SqlValue::Uuid(user)];
        let mut balances = table(
            ctx.db(),
            "SELECT account_key, balance_cents, currency FROM payments_ledger_accounts WHERE user_id = $1 \
             ORDER BY account_key",
            &owner,
        )
        .await?;
        merge_money(&mut balances, 1);
        let balances = section("Balances", &["Account", "Balance"], balances, |cells| {
            cells.first().and_then(|key| link("ledger-accounts", key))
        });
        let mut payouts = table(
            ctx.db(),
            &format!(
                "SELECT id, amount_cents, currency, state, order_id, period, created_at FROM payment_payouts \
                 WHERE payee_id = $1 ORDER BY created_at DESC LIMIT {PAYOUTS}"
            ),
            &owner,
        )
        .await?;
        merge_money(&mut payouts, 1);
        let payouts = section("Payouts", &["Id", "Amount", "State", "Order", "Period", "Created"], payouts, |cells| {
            cells.first().and_then(|payout| link("payouts", payout))
        });
        let yes_no = |on: bool| if on { "yes" } else { "no" };
        let detail = Detail::new(format!("Connected account {}", account.stripe_account_id))
            .field("User", people.long(user))
            .field("Stripe account", &account.stripe_account_id)
            .field("Onboarding", account.onboarding_status)
            .field("Charges enabled", yes_no(account.charges_enabled))
            .field("Payouts enabled", yes_no(account.payouts_enabled))
            .field("Created", at(account.created_at))
            .field("Updated", at(account.updated_at))
            .section(balances)
            .section(payouts);
        Ok(Some(detail))
    }
}
