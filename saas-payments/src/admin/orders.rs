//! The `orders` panel: payment orders by state and strategy, an order with its state
//! history, ledger entries, refunds and payout, and the staff actions refund, release and
//! retry of a failed payout.

use async_trait::async_trait;
use saas_core::admin::{
    ActionSpec, AdminPanel, AdminUser, Column, Detail, FieldKind, Filter, Form, FormField, KeyKind, ListPage,
    ListQuery, Search, Section, SqlList, SqlValue, table,
};
use saas_core::{AppContext, ServiceError, ServiceResult};

use super::{
    GROUP, People, at, at_opt, filter_of, history_section, link, merge_money, money, name_people, object_id, section,
    staff_service, starts_with_any, with_cells,
};
use crate::models::Order;
use crate::service::{PaymentsService, RefundRequest};
use crate::states::OrderState;

/// Payment orders.
pub(super) struct OrdersPanel {
    strategies: Vec<String>,
    list: SqlList,
}

impl OrdersPanel {
    /// The panel, filtering by the registered `strategies`.
    pub(super) fn new(strategies: Vec<String>) -> Self {
        let list = SqlList::new("payment_orders", "id", KeyKind::Uuid)
            .order_by("created_at")
            .columns(&[
                "id",
                "strategy_type",
                "state",
                "amount_cents",
                "currency",
                "payer_id",
                "payee_id",
                "created_at",
            ])
            .search(Search::Key)
            .search(Search::Exact("stripe_payment_intent_id"))
            .filter_text("state", "state")
            .filter_text("strategy", "strategy_type");
        Self { strategies, list }
    }
}

#[async_trait]
impl AdminPanel for OrdersPanel {
    fn slug(&self) -> &'static str {
        "orders"
    }

    fn title(&self) -> &'static str {
        "Payment orders"
    }

    fn group(&self) -> &'static str {
        GROUP
    }

    fn columns(&self) -> Vec<Column> {
        ["Id", "Strategy", "State", "Amount", "Payer", "Payee", "Created"].map(|label| Column { label }).to_vec()
    }

    fn search_hint(&self) -> Option<&'static str> {
        Some("order id or Stripe PaymentIntent id")
    }

    fn filters(&self) -> Vec<Filter> {
        vec![
            filter_of("state", "State", OrderState::ALL.iter().map(|s| s.as_str().to_owned())),
            filter_of("strategy", "Strategy", self.strategies.iter().cloned()),
        ]
    }

    fn actions(&self) -> Vec<ActionSpec> {
        vec![
            ActionSpec::new("refund", "Refund")
                .field(
                    FormField::new("amount_cents", "Amount in cents", FieldKind::Number)
                        .help("Leave empty to refund everything still refundable."),
                )
                .field(FormField::new("reason", "Reason", FieldKind::TextArea))
                .dangerous(),
            ActionSpec::new("release", "Release escrow funds").dangerous(),
            ActionSpec::new("retry_payout", "Retry failed payout"),
        ]
    }

    async fn list(&self, ctx: &AppContext, query: &ListQuery) -> ServiceResult<ListPage> {
        let mut page = self.list.fetch(ctx.db(), query).await?;
        with_cells(&mut page, |rows| merge_money(rows, 3));
        name_people(ctx, &mut page, &[4, 5]).await;
        Ok(page)
    }

    async fn detail(&self, ctx: &AppContext, id: &str) -> ServiceResult<Option<Detail>> {
        let Ok(id) = object_id(id, "order") else { return Ok(None) };
        let service = PaymentsService::get(ctx)?;
        let Some(order) = service.order(id).await? else { return Ok(None) };
        let refunds = service.refunds(id).await?;
        let payout = service.order_payout(id).await?;
        let people = People::of(
            ctx,
            [Some(order.payer_id), order.payee_id, payout.as_ref().map(|p| p.payee_id)]
                .into_iter()
                .flatten()
                .chain(refunds.iter().filter_map(|r| r.requested_by)),
        )
        .await;

        let mut refund_rows = Section::new(
            "Refunds",
            &["Id", "Amount", "State", "Reason", "Requested by", "Failure", "Stripe refund", "Created"],
        );
        for r in &refunds {
            refund_rows.row(
                vec![
                    r.id.to_string(),
                    money(r.amount_cents, &order.currency),
                    r.state.to_string(),
                    r.reason.clone(),
                    r.requested_by.map(|id| people.short(id)).unwrap_or_default(),
                    r.failure_reason.clone().unwrap_or_default(),
                    r.stripe_refund_id.clone().unwrap_or_default(),
                    at(r.created_at),
                ],
                None,
            );
        }
        let mut payout_rows =
            Section::new("Payouts", &["Id", "Payee", "Amount", "State", "Attempts", "Transfer", "Failure", "Created"]);
        if let Some(p) = &payout {
            payout_rows.row(
                vec![
                    p.id.to_string(),
                    people.short(p.payee_id),
                    money(p.amount_cents, &p.currency),
                    p.state.to_string(),
                    p.attempts.to_string(),
                    p.stripe_transfer_id.clone().unwrap_or_default(),
                    p.failure_reason.clone().unwrap_or_default(),
                    at(p.created_at),
                ],
                link("payouts", p.id),
            );
        }

        // The order's postings are keyed by it, its invoice, its refunds and its payout.
        let mut prefixes = vec![format!("payment:{id}:"), format!("escrow:{id}:")];
        prefixes.extend(order.stripe_invoice_id.iter().map(|invoice| format!("invoice:{invoice}:")));
        prefixes.extend(refunds.iter().map(|r| format!("refund:{}:", r.id)));
        prefixes.extend(payout.iter().map(|p| format!("payout:{}:", p.id)));
        let entries = ledger_entries(ctx, &prefixes).await?;

        let detail = order_fields(&order, &people)
            .section(history_section(ctx, &service, id).await?)
            .section(entries)
            .section(refund_rows)
            .section(payout_rows);
        Ok(Some(detail))
    }

    async fn act(
        &self,
        ctx: &AppContext,
        staff: &AdminUser,
        id: &str,
        action: &str,
        form: &Form,
    ) -> ServiceResult<String> {
        let (service, actor) = staff_service(ctx, staff)?;
        let id = object_id(id, "order")?;
        let order = service.order(id).await?.ok_or_else(|| ServiceError::not_found("order"))?;
        match action {
            "refund" => {
                let request =
                    RefundRequest { amount_cents: cents(form, "amount_cents")?, reason: text(form, "reason") };
                let refund = service.refund_order(id, request, &actor).await?;
                Ok(format!(
                    "Refund of {} requested ({}); the order is refunded when Stripe confirms it.",
                    money(refund.amount_cents, &order.currency),
                    refund.id
                ))
            }
            "release" => {
                let released = service.release_order(id, &actor).await?;
                if order.state == OrderState::Held && released.state == OrderState::Released {
                    Ok("Funds released to the payee; their payout is queued.".to_owned())
                } else {
                    Ok(format!("Nothing to release: the order is {}.", released.state))
                }
            }
            "retry_payout" => {
                let payout = service.order_payout(id).await?.ok_or_else(|| {
                    ServiceError::conflict("payments.no_payout", "This order has no payout to retry.")
                })?;
                let payout = service.retry_payout(payout.id, &actor).await?;
                Ok(format!("Payout of {} is pending again and queued.", money(payout.amount_cents, &payout.currency)))
            }
            _ => Err(ServiceError::not_found(&format!("Action {action}"))),
        }
    }
}

/// Every field of an order, but its client secret.
fn order_fields(order: &Order, people: &People) -> Detail {
    let c = &order.currency;
    let refundable = if order.state.is_refundable() { order.refundable_cents() } else { 0 };
    let reference = match (&order.reference_type, &order.reference_id) {
        (None, None) => String::new(),
        (kind, id) => format!("{} {}", kind.as_deref().unwrap_or(""), id.as_deref().unwrap_or("")).trim().to_owned(),
    };
    Detail::new(format!("Order {}", order.id))
        .field("Id", order.id)
        .field("State", order.state)
        .field("Strategy", &order.strategy_type)
        .field("Amount", money(order.amount_cents, c))
        .field("Platform fee", money(order.platform_fee_cents, c))
        .field("Refunded", money(order.refunded_cents, c))
        .field("Refundable now", money(refundable, c))
        .field("Payer", people.long(order.payer_id))
        .field("Payee", people.long_opt(order.payee_id))
        .field("Description", &order.description)
        .field("Reference", reference)
        .field("Metadata", order.metadata().to_string())
        .field("Subscription", order.subscription_id.map(|s| s.to_string()).unwrap_or_default())
        .field("Stripe PaymentIntent", order.stripe_payment_intent_id.as_deref().unwrap_or(""))
        .field("Stripe invoice", order.stripe_invoice_id.as_deref().unwrap_or(""))
        .field("Hold expires", at_opt(order.hold_expires_at))
        .field("Created", at(order.created_at))
        .field("Updated", at(order.updated_at))
}

/// The ledger entries whose keys start with one of `prefixes`, oldest first.
async fn ledger_entries(ctx: &AppContext, prefixes: &[String]) -> ServiceResult<Section> {
    let (condition, patterns) = starts_with_any(ctx.db(), "idempotency_key", prefixes, 1);
    let sql = format!(
        "SELECT created_at, debit_account, credit_account, amount_cents, currency, idempotency_key, description \
         FROM payments_ledger_entries WHERE {condition} ORDER BY created_at, id LIMIT 500"
    );
    let values: Vec<SqlValue> = patterns.into_iter().map(SqlValue::Text).collect();
    let mut rows = table(ctx.db(), &sql, &values).await?;
    merge_money(&mut rows, 3);
    Ok(section("Ledger entries", &["At", "Debit", "Credit", "Amount", "Key", "Description"], rows, |_| None))
}

/// An optional whole number of cents from a form.
fn cents(form: &Form, field: &str) -> ServiceResult<Option<i64>> {
    match form.get(field).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => {
            text.parse().map(Some).map_err(|_| ServiceError::invalid_field(field, "Enter a whole number of cents."))
        }
    }
}

/// An optional text from a form (blank is none).
fn text(form: &Form, field: &str) -> Option<String> {
    form.get(field).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}
