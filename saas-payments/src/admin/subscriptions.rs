//! The `subscriptions` panel: subscriptions by state, a subscription with its history and
//! its invoice orders.

use async_trait::async_trait;

use saas_core::admin::{
    AdminPanel, Column, Detail, Filter, KeyKind, ListPage, ListQuery, Search, SqlList, SqlValue, table,
};
use saas_core::{AppContext, ServiceResult};

use super::{
    GROUP, People, at, at_opt, filter_of, history_section, link, merge_money, name_people, object_id, section,
};
use crate::service::PaymentsService;
use crate::states::SubscriptionState;

/// Invoice orders shown on a subscription's page.
const ORDERS: usize = 100;

/// Subscriptions.
pub(super) struct SubscriptionsPanel {
    list: SqlList,
}

impl SubscriptionsPanel {
    /// The panel.
    pub(super) fn new() -> Self {
        let list = SqlList::new("payment_subscriptions", "id", KeyKind::Uuid)
            .order_by("created_at")
            .columns(&[
                "id",
                "user_id",
                "payee_id",
                "price_id",
                "state",
                "stripe_status",
                "current_period_end",
                "created_at",
            ])
            .search(Search::Key)
            .search(Search::Exact("stripe_subscription_id"))
            .filter_text("state", "state");
        Self { list }
    }
}

#[async_trait]
impl AdminPanel for SubscriptionsPanel {
    fn slug(&self) -> &'static str {
        "subscriptions"
    }

    fn title(&self) -> &'static str {
        "Subscriptions"
    }

    fn group(&self) -> &'static str {
        GROUP
    }

    fn columns(&self) -> Vec<Column> {
        ["Id", "Subscriber", "Payee", "Price", "State", "Stripe status", "Period ends", "Created"]
            .map(|label| Column { label })
            .to_vec()
    }

    fn search_hint(&self) -> Option<&'static str> {
        Some("subscription id or Stripe subscription id")
    }

    fn filters(&self) -> Vec<Filter> {
        vec![filter_of("state", "State", SubscriptionState::ALL.iter().map(|s| s.as_str().to_owned()))]
    }

    async fn list(&self, ctx: &AppContext, query: &ListQuery) -> ServiceResult<ListPage> {
        let mut page = self.list.fetch(ctx.db(), query).await?;
        name_people(ctx, &mut page, &[1, 2]).await;
        Ok(page)
    }

    async fn detail(&self, ctx: &AppContext, id: &str) -> ServiceResult<Option<Detail>> {
        let Ok(id) = object_id(id, "subscription") else { return Ok(None) };
        let service = PaymentsService::get(ctx)?;
        let Some(s) = service.subscription(id).await? else { return Ok(None) };
        let people = People::of(ctx, [Some(s.user_id), s.payee_id].into_iter().flatten()).await;
        let mut rows = table(
            ctx.db(),
            &format!(
                "SELECT id, state, amount_cents, currency, stripe_invoice_id, created_at FROM payment_orders \
                 WHERE subscription_id = $1 ORDER BY created_at DESC LIMIT {ORDERS}"
            ),
            &[SqlValue::Uuid(id)],
        )
        .await?;
        merge_money(&mut rows, 2);
        let orders = section("Orders", &["Id", "State", "Amount", "Stripe invoice", "Created"], rows, |cells| {
            cells.first().and_then(|order| link("orders", order))
        });
        let detail = Detail::new(format!("Subscription {}", s.id))
            .field("Id", s.id)
            .field("State", s.state)
            .field("Subscriber", people.long(s.user_id))
            .field("Payee", people.long_opt(s.payee_id))
            .field("Price", &s.price_id)
            .field("Stripe subscription", s.stripe_subscription_id.as_deref().unwrap_or(""))
            .field("Stripe customer", &s.stripe_customer_id)
            .field("Stripe status", &s.stripe_status)
            .field("Cancels at period end", if s.cancel_at_period_end { "yes" } else { "no" })
            .field("Period ends", at_opt(s.current_period_end))
            .field("Created", at(s.created_at))
            .field("Updated", at(s.updated_at))
            .section(history_section(ctx, &service, id).await?)
            .section(orders);
        Ok(Some(detail))
    }
}
