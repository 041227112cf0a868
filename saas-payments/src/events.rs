//! What the app hears of payments: a trait it implements (the reference server sends
//! notifications with it) and installs with
//! [`PaymentsModule::events`](crate::PaymentsModule::events). Hooks run after the change
//! is committed; their failures are logged, never undo a payment.

use async_trait::async_trait;

use saas_core::AppContext;

use crate::models::{Order, Payout, Refund, Subscription};

/// Payment events an app reacts to. Every method does nothing by default.
#[async_trait]
pub trait PaymentEvents: Send + Sync + 'static {
    /// An order's payment succeeded (the payer paid; escrow funds are now held).
    async fn payment_succeeded(&self, _ctx: &AppContext, _order: &Order) {}

    /// An order's payment failed.
    async fn payment_failed(&self, _ctx: &AppContext, _order: &Order) {}

    /// Escrow funds were released to the payee.
    async fn funds_released(&self, _ctx: &AppContext, _order: &Order) {}

    /// A refund was completed.
    async fn refund_issued(&self, _ctx: &AppContext, _order: &Order, _refund: &Refund) {}

    /// A payout reached the payee's Connect account.
    async fn payout_paid(&self, _ctx: &AppContext, _payout: &Payout) {}

    /// A payout failed for good.
    async fn payout_failed(&self, _ctx: &AppContext, _payout: &Payout) {}

    /// A subscription changed state.
    async fn subscription_changed(&self, _ctx: &AppContext, _subscription: &Subscription) {}
}
