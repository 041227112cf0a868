//! The dashboard's payments card: orders by state, failed webhook events and failed
//! payouts, each linking to the list of what it counts.

use async_trait::async_trait;

use saas_core::admin::{Card, DASHBOARD_CAP, DashboardCard, SqlValue, count_upto};
use saas_core::{AppContext, ServiceResult};

use crate::states::OrderState;

/// The payments figures of the dashboard.
pub(super) struct PaymentsCard;

#[async_trait]
impl DashboardCard for PaymentsCard {
    async fn card(&self, ctx: &AppContext) -> ServiceResult<Card> {
        let db = ctx.db();
        let mut card = Card::new("Payments");
        // One bounded count per state, each served by the (state, created_at, id) index.
        for state in OrderState::ALL {
            let where_state = [SqlValue::Text(state.as_str().to_owned())];
            let orders = count_upto(db, "payment_orders WHERE state = $1", &where_state, DASHBOARD_CAP).await?;
            if orders.count > 0 {
                let link = format!("/admin/orders/?state={state}");
                card = card.item(format!("Orders {}", state.as_str().replace('_', " ")), orders, Some(&link));
            }
        }
        let failed = [SqlValue::Text("failed".to_owned())];
        let failed_events = count_upto(db, "payment_webhook_events WHERE state = $1", &failed, DASHBOARD_CAP).await?;
        let failed_payouts = count_upto(db, "payment_payouts WHERE state = $1", &failed, DASHBOARD_CAP).await?;
        Ok(card.item("Failed webhook events", failed_events, Some("/admin/webhook-events/?status=failed")).item(
            "Failed payouts",
            failed_payouts,
            Some("/admin/payouts/?state=failed"),
        ))
    }
}
