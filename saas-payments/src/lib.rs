#![doc = include_str!("../README.md")]

mod admin;
pub mod events;
mod jobs;
pub mod ledger;
pub mod models;
pub mod routes;
pub mod service;
pub mod states;
pub mod strategy;
pub mod stripe;
#[cfg(feature = "testing")]
pub mod testing;
pub mod webhooks;

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use saas_core::admin::AdminSite;
use saas_core::jobs::{CronSchedule, JobRegistry};
use saas_core::{AppContext, Migrations, Module, ServiceResult};

pub use events::PaymentEvents;
pub use jobs::{EXPIRE_HOLDS_JOB, MONTHLY_PAYOUTS_JOB, QUEUE_PAYOUTS_JOB, RECONCILE_JOB, RETRY_WEBHOOKS_JOB};
pub use ledger::{Account, AccountType, Ledger, Posting};
pub use models::{
    ConnectedAccount, Order, Payout, ReconciliationIssue, Refund, Subscription, Transition, WebhookEvent,
};
pub use service::{Actor, EXECUTE_PAYOUT_JOB, PROCESS_WEBHOOK_JOB, PaymentsService};
pub use states::{
    OnboardingStatus, OrderAction, OrderState, PayoutAction, PayoutState, RefundAction, RefundState,
    SubscriptionAction, SubscriptionState,
};
pub use strategy::{
    DirectStrategy, EscrowStrategy, NewOrder, OnPaid, OnRelease, PaymentStrategy, Policy, SubscriptionStrategy,
};

/// The payments module: its tables, routes, jobs and cron entries, with the three built-in
/// strategies and any the app adds.
#[derive(Clone)]
pub struct PaymentsModule {
    strategies: Vec<Arc<dyn PaymentStrategy>>,
    events: Option<Arc<dyn PaymentEvents>>,
}

impl Default for PaymentsModule {
    fn default() -> Self {
        Self {
            strategies: vec![Arc::new(DirectStrategy), Arc::new(EscrowStrategy), Arc::new(SubscriptionStrategy)],
            events: None,
        }
    }
}

impl PaymentsModule {
    /// Registers a strategy of the app's own (one of the same name is replaced).
    pub fn strategy(mut self, strategy: impl PaymentStrategy) -> Self {
        self.strategies.retain(|s| s.name() != strategy.name());
        self.strategies.push(Arc::new(strategy));
        self
    }

    /// Installs the app's hook for payment events (notifications, analytics…).
    pub fn events(mut self, events: impl PaymentEvents) -> Self {
        self.events = Some(Arc::new(events));
        self
    }

    /// The migrations of the payments tables.
    pub fn migrations() -> Migrations {
        Migrations::new(sqlx::migrate!("migrations/sqlite"), sqlx::migrate!("migrations/postgres"))
    }

    /// Installs the service in `ctx` and returns the routes, for apps that do not use the
    /// app builder (run [`PaymentsModule::migrations`] on the database first).
    pub fn router(&self, ctx: &AppContext) -> ServiceResult<Router<AppContext>> {
        self.install(ctx)?;
        Ok(routes::router())
    }

    fn install(&self, ctx: &AppContext) -> ServiceResult<()> {
        ctx.insert(PaymentsService::new(ctx, self.strategies.clone(), self.events.clone())?);
        Ok(())
    }
}

#[async_trait]
impl Module for PaymentsModule {
    async fn metrics(&self, ctx: &AppContext) -> Vec<saas_core::metrics::Sample> {
        match PaymentsService::get(ctx) {
            Ok(service) => service.webhook_metrics().await,
            Err(_) => Vec::new(),
        }
    }

    fn name(&self) -> &'static str {
        "payments"
    }

    fn migrations(&self) -> Migrations {
        PaymentsModule::migrations()
    }

    async fn init(&self, ctx: &AppContext) -> ServiceResult<()> {
        self.install(ctx)
    }

    fn routes(&self, _ctx: &AppContext) -> Router<AppContext> {
        routes::router()
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        <routes::PaymentsApi as utoipa::OpenApi>::openapi()
    }

    fn api_root(&self) -> Option<(&'static str, &'static str)> {
        Some(("payments", "/api/v1/payments/"))
    }

    fn jobs(&self, jobs: &mut JobRegistry) {
        jobs::register(jobs);
    }

    fn cron(&self, cron: &mut CronSchedule) {
        jobs::schedule(cron);
    }

    /// The payments panels (orders, payouts, webhook events, ledger accounts,
    /// subscriptions, Connect accounts) and the dashboard's payments card.
    fn admin(&self, site: &mut AdminSite) {
        admin::register(site, self.strategies.iter().map(|s| s.name().to_owned()).collect());
    }
}
