//! The payment objects as the API shows them and the database stores them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::states::{OnboardingStatus, OrderState, PayoutState, RefundState, SubscriptionState};

/// A payment from a payer, driven by its strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Order {
    /// Its id.
    pub id: Uuid,
    /// Who pays.
    pub payer_id: Uuid,
    /// Who is paid (escrow always has one).
    pub payee_id: Option<Uuid>,
    /// The strategy that drives it: `direct`, `escrow`, `subscription` or an app's own.
    pub strategy_type: String,
    /// Where it is.
    #[sqlx(try_from = "String")]
    pub state: OrderState,
    /// What the payer pays, in cents.
    pub amount_cents: i64,
    /// The platform's fee: `amount_cents * PLATFORM_FEE_PERCENT / 100`, rounded down.
    pub platform_fee_cents: i64,
    /// Refunded so far, in cents.
    pub refunded_cents: i64,
    /// ISO currency code, lower case.
    pub currency: String,
    /// Free text shown to the payer.
    pub description: String,
    /// What the order pays for, in the app's terms (`booking`).
    pub reference_type: Option<String>,
    /// Its id in the app.
    pub reference_id: Option<String>,
    /// The app's own data (a JSON object as text in the database).
    #[serde(skip)]
    pub metadata: String,
    /// The subscription an invoice order belongs to.
    pub subscription_id: Option<Uuid>,
    /// The Stripe PaymentIntent.
    #[serde(skip)]
    pub stripe_payment_intent_id: Option<String>,
    /// The Stripe invoice (subscription orders).
    #[serde(skip)]
    pub stripe_invoice_id: Option<String>,
    /// For the client-side Stripe SDK.
    pub client_secret: Option<String>,
    /// Escrow: when the hold releases by itself.
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl Order {
    /// The metadata object (`{}` when absent or unreadable).
    pub fn metadata(&self) -> serde_json::Value {
        serde_json::from_str(&self.metadata).unwrap_or_else(|_| serde_json::json!({}))
    }

    /// What can still be refunded: the amount less what was refunded, and less the fee
    /// unless the funds are still held (the fee is refundable only while held).
    pub fn refundable_cents(&self) -> i64 {
        let fee = if self.state == OrderState::Held { 0 } else { self.platform_fee_cents };
        (self.amount_cents - fee - self.refunded_cents).max(0)
    }
}

/// A refund of (part of) an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Refund {
    /// Its id.
    pub id: Uuid,
    /// The order refunded.
    pub order_id: Uuid,
    /// How much, in cents.
    pub amount_cents: i64,
    /// Why.
    pub reason: String,
    /// Where it is.
    #[sqlx(try_from = "String")]
    pub state: RefundState,
    /// Stripe's refund id.
    #[serde(skip)]
    pub stripe_refund_id: Option<String>,
    /// Who asked for it.
    pub requested_by: Option<Uuid>,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// Money leaving a user's balance for their Connect account (a Stripe Transfer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Payout {
    /// Its id.
    pub id: Uuid,
    /// Who is paid.
    pub payee_id: Uuid,
    /// How much, in cents.
    pub amount_cents: i64,
    /// ISO currency code.
    pub currency: String,
    /// Where it is.
    #[sqlx(try_from = "String")]
    pub state: PayoutState,
    /// The escrow order it pays out, if any.
    pub order_id: Option<Uuid>,
    /// The month it aggregates (`2026-11`), for monthly payouts.
    pub period: Option<String>,
    /// The Stripe Transfer.
    pub stripe_transfer_id: Option<String>,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// Calls to Stripe so far.
    pub attempts: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A recurring payment for a Stripe price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Subscription {
    /// Its id.
    pub id: Uuid,
    /// The subscriber.
    pub user_id: Uuid,
    /// Who receives the payments (less the fee), if anyone.
    pub payee_id: Option<Uuid>,
    /// The Stripe price.
    pub price_id: String,
    /// Where it is.
    #[sqlx(try_from = "String")]
    pub state: SubscriptionState,
    /// The Stripe subscription.
    pub stripe_subscription_id: Option<String>,
    /// The subscriber's Stripe customer.
    #[serde(skip)]
    pub stripe_customer_id: String,
    /// Stripe's own status word.
    #[serde(skip)]
    pub stripe_status: String,
    /// The `created` time (unix seconds) of the newest Stripe event applied, so an older
    /// event never overwrites a newer one.
    #[serde(skip)]
    pub stripe_event_created: i64,
    /// It ends at the end of the current period.
    pub cancel_at_period_end: bool,
    /// The end of the current period.
    pub current_period_end: Option<DateTime<Utc>>,
    /// The client secret of the first invoice's payment, for the client-side Stripe SDK.
    pub client_secret: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A user's Stripe Connect Express account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ConnectedAccount {
    /// The user.
    pub user_id: Uuid,
    /// Stripe's account id.
    pub stripe_account_id: String,
    /// How far onboarding is.
    #[sqlx(try_from = "String")]
    pub onboarding_status: OnboardingStatus,
    /// It can take charges.
    pub charges_enabled: bool,
    /// It can receive payouts.
    pub payouts_enabled: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// One state change of a payment object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Transition {
    /// `order`, `payout`, `refund` or `subscription`.
    pub object_type: String,
    /// The object.
    pub object_id: Uuid,
    /// The state before.
    pub from_state: String,
    /// The state after.
    pub to_state: String,
    /// The action taken.
    pub action: String,
    /// Who, when a person did it.
    pub actor_id: Option<Uuid>,
    /// Why (the Stripe event, the cron entry…).
    pub reason: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Something reconciliation found that it could not safely heal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ReconciliationIssue {
    /// Its id.
    pub id: Uuid,
    /// `order`, `payout` or `subscription`.
    pub object_type: String,
    /// The object's id.
    pub object_id: String,
    /// What is wrong (`stripe_missing`, `amount_mismatch`…).
    pub kind: String,
    /// The details.
    pub detail: String,
    /// Staff marked it resolved.
    pub resolved: bool,
    /// Found.
    pub created_at: DateTime<Utc>,
}

/// A Stripe webhook event as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct WebhookEvent {
    /// Stripe's event id.
    pub id: String,
    /// Its type (`payment_intent.succeeded`).
    pub event_type: String,
    /// `pending`, `processed`, `ignored` or `failed`.
    pub state: String,
    /// Processing attempts so far.
    pub attempts: i32,
    /// The last processing error.
    pub last_error: Option<String>,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// When it was processed.
    pub processed_at: Option<DateTime<Utc>>,
}
