//! Payments for the SaaS SDK. So far: the state machines of the payment objects — orders,
//! payouts, refunds, subscriptions and Connect onboarding — exactly as the domain rules define
//! them (an illegal transition is a 409 `payments.invalid_transition`), and the double-entry
//! ledger with constant-time balances. The Stripe strategies and the webhook receiver build
//! on these.

pub mod ledger;
pub mod states;

use async_trait::async_trait;
use saas_core::{Migrations, Module};

pub use ledger::{Account, AccountType, Ledger, Posting};
pub use states::{
    OnboardingStatus, OrderAction, OrderState, PayoutAction, PayoutState, RefundAction, RefundState,
    SubscriptionAction, SubscriptionState,
};

/// The payments module: its tables.
#[derive(Default, Clone)]
pub struct PaymentsModule;

impl PaymentsModule {
    /// The migrations of the payments tables.
    pub fn migrations() -> Migrations {
        Migrations::new(sqlx::migrate!("migrations/sqlite"), sqlx::migrate!("migrations/postgres"))
    }
}

#[async_trait]
impl Module for PaymentsModule {
    fn name(&self) -> &'static str {
        "payments"
    }

    fn migrations(&self) -> Migrations {
        PaymentsModule::migrations()
    }
}
