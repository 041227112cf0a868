//! The `payouts` panel: payouts to payees (of escrow orders and monthly), by state, with
//! their history, and the staff retry of a failed one.

use async_trait::async_trait;

use saas_core::admin::{
    ActionSpec, AdminPanel, AdminUser, Column, Detail, Filter, Form, KeyKind, ListPage, ListQuery, Search, SqlList,
};
use saas_core::{AppContext, ServiceError, ServiceResult};

use super::{
    GROUP, People, at, filter_of, history_section, merge_money, money, name_people, object_id, staff_service,
    with_cells,
};
use crate::service::PaymentsService;
use crate::states::PayoutState;

/// Payouts to payees.
pub(super) struct PayoutsPanel {
    list: SqlList,
}

impl PayoutsPanel {
    /// The panel.
    pub(super) fn new() -> Self {
        let list = SqlList::new("payment_payouts", "id", KeyKind::Uuid)
            .order_by("created_at")
            .columns(&[
                "id",
                "payee_id",
                "amount_cents",
                "currency",
                "state",
                "order_id",
                "period",
                "attempts",
                "created_at",
            ])
            .search(Search::Key)
            .search(Search::Exact("stripe_transfer_id"))
            .filter_text("state", "state");
        Self { list }
    }
}

#[async_trait]
impl AdminPanel for PayoutsPanel {
    fn slug(&self) -> &'static str {
        "payouts"
    }

    fn title(&self) -> &'static str {
        "Payouts"
    }

    fn group(&self) -> &'static str {
        GROUP
    }

    fn columns(&self) -> Vec<Column> {
        ["Id", "Payee", "Amount", "State", "Order", "Period", "Attempts", "Created"]
            .map(|label| Column { label })
            .to_vec()
    }

    fn search_hint(&self) -> Option<&'static str> {
        Some("payout id or Stripe transfer id")
    }

    fn filters(&self) -> Vec<Filter> {
        vec![filter_of("state", "State", PayoutState::ALL.iter().map(|s| s.as_str().to_owned()))]
    }

    fn actions(&self) -> Vec<ActionSpec> {
        vec![ActionSpec::new("retry", "Retry failed payout")]
    }

    async fn list(&self, ctx: &AppContext, query: &ListQuery) -> ServiceResult<ListPage> {
        let mut page = self.list.fetch(ctx.db(), query).await?;
        with_cells(&mut page, |rows| merge_money(rows, 2));
        name_people(ctx, &mut page, &[1]).await;
        Ok(page)
    }

    async fn detail(&self, ctx: &AppContext, id: &str) -> ServiceResult<Option<Detail>> {
        let Ok(id) = object_id(id, "payout") else { return Ok(None) };
        let service = PaymentsService::get(ctx)?;
        let Some(p) = service.payout(id).await? else { return Ok(None) };
        let people = People::of(ctx, [p.payee_id]).await;
        let detail = Detail::new(format!("Payout {}", p.id))
            .field("Id", p.id)
            .field("State", p.state)
            .field("Payee", people.long(p.payee_id))
            .field("Amount", money(p.amount_cents, &p.currency))
            .field("Order", p.order_id.map(|o| o.to_string()).unwrap_or_default())
            .field("Period", p.period.as_deref().unwrap_or(""))
            .field("Stripe transfer", p.stripe_transfer_id.as_deref().unwrap_or(""))
            .field("Attempts", p.attempts)
            .field("Failure", p.failure_reason.as_deref().unwrap_or(""))
            .field("Created", at(p.created_at))
            .field("Updated", at(p.updated_at))
            .section(history_section(ctx, &service, id).await?);
        Ok(Some(detail))
    }

    async fn act(
        &self,
        ctx: &AppContext,
        staff: &AdminUser,
        id: &str,
        action: &str,
        _form: &Form,
    ) -> ServiceResult<String> {
        let (service, actor) = staff_service(ctx, staff)?;
        let id = object_id(id, "payout")?;
        match action {
            "retry" => {
                let payout = service.retry_payout(id, &actor).await?;
                Ok(format!("Payout of {} is pending again and queued.", money(payout.amount_cents, &payout.currency)))
            }
            _ => Err(ServiceError::not_found(&format!("Action {action}"))),
        }
    }
}
