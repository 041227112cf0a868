//! The dashboard's payments card: orders by state, failed webhook events and failed
//! payouts, each linking to the list of what it counts.

use async_trait::async_trait;

use saas_core::admin::{Card, DashboardCard, SqlValue, count, table};
use saas_core::{AppContext, ServiceResult};

use crate::states::OrderState;

/// The payments figures of the dashboard.
pub(super) struct PaymentsCard;

#[async_trait]
impl DashboardCard for PaymentsCard {
    async fn card(&self, ctx: &AppContext) -> ServiceResult<Card> {
        let db = ctx.db();
        let by_state = table(db, "SELECT state, COUNT(*) FROM payment_orders GROUP BY state", &[]).await?;
        let mut card = Card::new("Payments");
        for state in OrderState::ALL {
            let orders = by_state
                .iter()
                .find(|row| row.first().map(String::as_str) == Some(state.as_str()))
                .and_then(|row| row.get(1)?.parse::<i64>().ok())
                .unwrap_or(0);
            if orders > 0 {
                let link = format!("/admin/orders/?state={state}");
                card = card.item(format!("Orders {}", state.as_str().replace('_', " ")), orders, Some(&link));
            }
        }
        let failed_events = count(
            db,
            "SELECT COUNT(*) FROM payment_webhook_events WHERE state = $1",
            &[SqlValue::Text("failed".to_owned())],
        )
        .await?;
        let failed_payouts =
            count(db, "SELECT COUNT(*) FROM payment_payouts WHERE state = $1", &[SqlValue::Text("failed".to_owned())])
                .await?;
        Ok(card.item("Failed webhook events", failed_events, Some("/admin/webhook-events/?status=failed")).item(
            "Failed payouts",
            failed_payouts,
            Some("/admin/payouts/?state=failed"),
        ))
    }
}
