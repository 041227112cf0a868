//! Payments for the SaaS SDK. This crate holds the state machines of the payment objects —
//! orders, payouts, refunds, subscriptions and Connect onboarding — exactly as the domain
//! rules define them: every transition is an explicit action, and an illegal one is a 409
//! `payments.invalid_transition`. The Stripe strategies, the ledger and the webhook receiver
//! are built on these.

pub mod states;

pub use states::{
    OnboardingStatus, OrderAction, OrderState, PayoutAction, PayoutState, RefundAction, RefundState,
    SubscriptionAction, SubscriptionState,
};
