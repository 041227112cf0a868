//! Payment strategies: how an order is charged, what its payment's success means, what
//! releasing it means and whom a refund takes the money back from. Three ship — `direct`,
//! `escrow` and `subscription` — and an app registers its own by name with
//! [`PaymentsModule::strategy`](crate::PaymentsModule::strategy).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use saas_core::{ServiceError, ServiceResult};

use crate::ledger::{Account, Posting};
use crate::models::Order;
use crate::states::{OrderAction, OrderState};
use crate::stripe::{NewPaymentIntent, PaymentIntentInfo, StripeApi};

/// The payments policy of the app (from its configuration).
#[derive(Debug, Clone)]
pub struct Policy {
    /// `PLATFORM_FEE_PERCENT` [15].
    pub fee_percent: u32,
    /// `ESCROW_DEFAULT_HOLD_DURATION_DAYS` [42].
    pub hold_days: i64,
    /// `ESCROW_MAX_HOLD_DURATION_DAYS` [90].
    pub max_hold_days: i64,
    /// `MINIMUM_PAYOUT_AMOUNT_CENTS` [1000].
    pub minimum_payout_cents: i64,
    /// `FRONTEND_URL`: base of the Connect onboarding return links.
    pub frontend_url: String,
}

/// An order about to be created, as the caller asked for it.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// The payer.
    pub payer_id: Uuid,
    /// The payee, if any.
    pub payee_id: Option<Uuid>,
    /// The amount in cents (positive).
    pub amount_cents: i64,
    /// Lower-case ISO code.
    pub currency: String,
    /// The app's own data.
    pub metadata: serde_json::Value,
}

/// What a successful payment does to an order.
#[derive(Debug, Clone)]
pub enum OnPaid {
    /// The order is settled now, with these postings.
    Settle(Vec<Posting>),
    /// The funds are held until `until` (or an earlier release), with these postings.
    Hold {
        /// The postings of the capture.
        postings: Vec<Posting>,
        /// When the hold releases by itself.
        until: DateTime<Utc>,
    },
}

/// What releasing a held order does.
#[derive(Debug, Clone)]
pub struct OnRelease {
    /// The postings of the release.
    pub postings: Vec<Posting>,
    /// The payout it creates: `(payee, amount in cents)`.
    pub payout: Option<(Uuid, i64)>,
}

/// What an order's Stripe charge is.
pub struct Charge {
    /// The PaymentIntent.
    pub payment_intent: PaymentIntentInfo,
}

/// How a kind of order behaves. Implement it for a strategy of the app's own and register
/// it by name; `strategy_type` of `POST orders/` picks it.
#[async_trait]
pub trait PaymentStrategy: Send + Sync + 'static {
    /// The name orders carry in `strategy_type`.
    fn name(&self) -> &str;

    /// Checks a new order before anything is stored or sent to Stripe (400 on a bad one).
    fn validate(&self, _order: &NewOrder) -> ServiceResult<()> {
        Ok(())
    }

    /// Whether `POST orders/` creates orders of this strategy (subscription orders come
    /// from paid invoices instead).
    fn accepts_orders(&self) -> bool {
        true
    }

    /// The platform's fee of an order.
    fn fee(&self, amount_cents: i64, policy: &Policy) -> i64 {
        saas_toolkit::money::percent_floor(amount_cents, policy.fee_percent)
    }

    /// Creates the order's charge at Stripe: by default a PaymentIntent on the platform's
    /// account (separate charges and transfers), keyed `order:{id}:create`.
    async fn create_charge(&self, stripe: &StripeApi, order: &Order) -> ServiceResult<Charge> {
        let new = NewPaymentIntent {
            amount_cents: order.amount_cents,
            currency: &order.currency,
            description: Some(order.description.as_str()).filter(|d| !d.is_empty()),
            transfer_group: Some(&format!("order_{}", order.id)),
            metadata: vec![("order_id", order.id.to_string()), ("strategy_type", order.strategy_type.clone())],
        };
        let payment_intent = stripe.create_payment_intent(&new, &format!("order:{}:create", order.id)).await?;
        Ok(Charge { payment_intent })
    }

    /// What the order's successful payment does: postings, and settle or hold.
    fn on_paid(&self, order: &Order, policy: &Policy) -> ServiceResult<OnPaid>;

    /// What releasing a held order does. By default nothing can be released.
    fn on_release(&self, order: &Order) -> ServiceResult<OnRelease> {
        Err(not_releasable(order))
    }

    /// The postings that take `amount_cents` of refund `refund_id` back from whoever was
    /// credited, into escrow, before the refund leaves escrow for Stripe. By default: from
    /// the payee once the order was settled or released to them, or from platform revenue
    /// when it had no payee (its rest went there); nothing while funds are held.
    fn refund_takeback(&self, order: &Order, refund_id: Uuid, amount_cents: i64) -> Vec<Posting> {
        if order.state == OrderState::Held {
            return Vec::new();
        }
        let currency = &order.currency;
        let (from, key) = match order.payee_id {
            Some(payee) => (Account::user(payee, currency), format!("refund:{refund_id}:payee")),
            None => (Account::revenue(currency), format!("refund:{refund_id}:revenue")),
        };
        vec![Posting::new(from, Account::escrow(currency), amount_cents, key).described("Refund taken back")]
    }
}

fn not_releasable(order: &Order) -> ServiceError {
    order.state.apply(OrderAction::Release).err().unwrap_or_else(|| {
        ServiceError::conflict("payments.invalid_transition", "Orders of this strategy are not released.")
            .with_detail("state", order.state.to_string())
            .with_detail("action", "release")
    })
}

/// The postings of a paid order that is settled at once: the full amount into escrow, the
/// fee to revenue, the rest to the payee (or, without a payee, to revenue too). Keyed
/// `{prefix}:received`, `{prefix}:fee`, `{prefix}:payee`.
pub fn settle_postings(order: &Order, prefix: &str) -> Vec<Posting> {
    let currency = &order.currency;
    let rest = order.amount_cents - order.platform_fee_cents;
    let mut postings = vec![
        Posting::new(
            Account::stripe(currency),
            Account::escrow(currency),
            order.amount_cents,
            format!("{prefix}:received"),
        )
        .described("Payment received"),
    ];
    if order.platform_fee_cents > 0 {
        postings.push(
            Posting::new(
                Account::escrow(currency),
                Account::revenue(currency),
                order.platform_fee_cents,
                format!("{prefix}:fee"),
            )
            .described("Platform fee"),
        );
    }
    if rest > 0 {
        let to = order.payee_id.map_or_else(|| Account::revenue(currency), |payee| Account::user(payee, currency));
        postings.push(
            Posting::new(Account::escrow(currency), to, rest, format!("{prefix}:payee"))
                .described("Payment to the payee"),
        );
    }
    postings
}

/// `direct`: a PaymentIntent; on success the order is captured, settled and posted.
#[derive(Debug, Default, Clone, Copy)]
pub struct DirectStrategy;

#[async_trait]
impl PaymentStrategy for DirectStrategy {
    fn name(&self) -> &str {
        "direct"
    }

    fn on_paid(&self, order: &Order, _policy: &Policy) -> ServiceResult<OnPaid> {
        Ok(OnPaid::Settle(settle_postings(order, &format!("payment:{}", order.id))))
    }
}

/// `escrow`: the charge stays on the platform; on success the funds are held for the
/// payee until released (by the payer, staff, or the hold's expiry), then paid out.
#[derive(Debug, Default, Clone, Copy)]
pub struct EscrowStrategy;

#[async_trait]
impl PaymentStrategy for EscrowStrategy {
    fn name(&self) -> &str {
        "escrow"
    }

    fn validate(&self, order: &NewOrder) -> ServiceResult<()> {
        match order.payee_id {
            None => Err(ServiceError::invalid_field("payee_id", "An escrow order needs a payee.")),
            Some(payee) if payee == order.payer_id => {
                Err(ServiceError::invalid_field("payee_id", "The payee cannot be the payer."))
            }
            Some(_) => Ok(()),
        }
    }

    fn on_paid(&self, order: &Order, policy: &Policy) -> ServiceResult<OnPaid> {
        let currency = &order.currency;
        let capture = Posting::new(
            Account::stripe(currency),
            Account::escrow(currency),
            order.amount_cents,
            format!("escrow:{}:capture", order.id),
        )
        .described("Escrow payment held");
        Ok(OnPaid::Hold { postings: vec![capture], until: Utc::now() + chrono::Duration::days(policy.hold_days) })
    }

    fn on_release(&self, order: &Order) -> ServiceResult<OnRelease> {
        let payee = order.payee_id.ok_or_else(|| ServiceError::internal("escrow order without a payee"))?;
        let currency = &order.currency;
        let remaining = order.amount_cents - order.refunded_cents;
        let fee = order.platform_fee_cents.min(remaining);
        let rest = remaining - fee;
        let mut postings = Vec::new();
        if rest > 0 {
            postings.push(
                Posting::new(
                    Account::escrow(currency),
                    Account::user(payee, currency),
                    rest,
                    format!("escrow:{}:release:recipient", order.id),
                )
                .described("Escrow released to the payee"),
            );
        }
        if fee > 0 {
            postings.push(
                Posting::new(
                    Account::escrow(currency),
                    Account::revenue(currency),
                    fee,
                    format!("escrow:{}:release:fee", order.id),
                )
                .described("Platform fee"),
            );
        }
        Ok(OnRelease { postings, payout: (rest > 0).then_some((payee, rest)) })
    }
}

/// `subscription`: orders are made from paid invoices of a subscription, never through
/// `POST orders/`; each is settled with fee and payee postings keyed by the invoice.
#[derive(Debug, Default, Clone, Copy)]
pub struct SubscriptionStrategy;

#[async_trait]
impl PaymentStrategy for SubscriptionStrategy {
    fn name(&self) -> &str {
        "subscription"
    }

    fn accepts_orders(&self) -> bool {
        false
    }

    fn on_paid(&self, order: &Order, _policy: &Policy) -> ServiceResult<OnPaid> {
        let invoice = order.stripe_invoice_id.as_deref().unwrap_or("unknown");
        Ok(OnPaid::Settle(settle_postings(order, &format!("invoice:{invoice}"))))
    }
}
