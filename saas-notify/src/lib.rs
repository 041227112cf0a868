#![doc = include_str!("../README.md")]

mod admin;
mod jobs;
pub mod models;
pub mod push;
pub mod routes;
pub mod service;
mod socket;
pub mod store;

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use saas_core::jobs::{CronSchedule, JobRegistry};
use saas_core::{AppContext, Migrations, Module, ServiceResult};

pub use jobs::{PURGE_READ_JOB, RETRY_FAILED_JOB};
pub use models::{Channel, Device, Notification, NotificationType};
pub use push::{ApnsSender, FcmSender, PushMessage, PushOutcome, PushSender};
pub use service::{DELIVER_JOB, NewType, NotificationRequest, NotifyService, Preferences, TypeUpdate};

/// The notifications module.
#[derive(Default, Clone)]
pub struct NotifyModule {
    senders: Vec<Arc<dyn PushSender>>,
}

impl NotifyModule {
    /// Adds a push sender of the app's own (or replaces the configured one of its platform).
    pub fn push_sender(mut self, sender: Arc<dyn PushSender>) -> Self {
        self.senders.push(sender);
        self
    }

    /// The migrations of the notification tables (they seed the domain's types).
    pub fn migrations() -> Migrations {
        Migrations::new(sqlx::migrate!("migrations/sqlite"), sqlx::migrate!("migrations/postgres"))
    }

    /// Installs the service in `ctx` and returns the routes, for apps that do not use the
    /// app builder (run [`NotifyModule::migrations`] on the database first).
    pub fn router(&self, ctx: &AppContext) -> ServiceResult<Router<AppContext>> {
        self.install(ctx)?;
        Ok(routes::router())
    }

    fn install(&self, ctx: &AppContext) -> ServiceResult<()> {
        let mut senders = push::configured_senders(ctx.config())?;
        senders.extend(self.senders.iter().cloned());
        ctx.insert(NotifyService::new(ctx, senders));
        Ok(())
    }
}

#[async_trait]
impl Module for NotifyModule {
    fn name(&self) -> &'static str {
        "notify"
    }

    fn migrations(&self) -> Migrations {
        NotifyModule::migrations()
    }

    async fn init(&self, ctx: &AppContext) -> ServiceResult<()> {
        self.install(ctx)
    }

    fn routes(&self, _ctx: &AppContext) -> Router<AppContext> {
        routes::router()
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        <routes::NotifyApi as utoipa::OpenApi>::openapi()
    }

    fn api_root(&self) -> Option<(&'static str, &'static str)> {
        Some(("notifications", "/api/v1/notifications/"))
    }

    fn jobs(&self, jobs: &mut JobRegistry) {
        jobs::register(jobs);
    }

    fn cron(&self, cron: &mut CronSchedule) {
        jobs::schedule(cron);
    }

    fn admin(&self, site: &mut saas_core::admin::AdminSite) {
        admin::register(site);
    }
}
