//! What a domain crate hands the app: routes, migrations, OpenAPI, jobs, cron and health.

use async_trait::async_trait;
use axum::Router;
use utoipa::openapi::OpenApi;

use crate::context::AppContext;
use crate::db::Migrations;
use crate::error::ServiceResult;
use crate::health::HealthCheck;
use crate::jobs::{CronSchedule, JobRegistry};

/// A pluggable part of an app (auth, payments, chat, notifications, or an app's own).
#[async_trait]
pub trait Module: Send + Sync + 'static {
    /// A short unique name (`auth`, `chat`); it also names the module's migrations table.
    fn name(&self) -> &'static str;

    /// The module's migrations for SQLite and PostgreSQL.
    fn migrations(&self) -> Migrations {
        Migrations::none()
    }

    /// Runs once after migrations, before serving: seed rows, register services in the context.
    async fn init(&self, _ctx: &AppContext) -> ServiceResult<()> {
        Ok(())
    }

    /// The module's HTTP routes, with their full paths (`/api/v1/auth/login/`).
    fn routes(&self, _ctx: &AppContext) -> Router<AppContext> {
        Router::new()
    }

    /// The OpenAPI description of those routes.
    fn openapi(&self) -> OpenApi {
        OpenApi::default()
    }

    /// Where the module is mounted, listed by `GET /api/v1/` (e.g. `("auth", "/api/v1/auth/")`).
    fn api_root(&self) -> Option<(&'static str, &'static str)> {
        None
    }

    /// Registers the module's background jobs.
    fn jobs(&self, _jobs: &mut JobRegistry) {}

    /// Registers the module's periodic entries.
    fn cron(&self, _cron: &mut CronSchedule) {}

    /// Command-line commands the module adds to the app's binary (e.g. `createsuperuser`).
    fn commands(&self) -> Vec<clap::Command> {
        Vec::new()
    }

    /// Runs one of [`commands`](Self::commands) on the built app.
    async fn run_command(&self, _ctx: &AppContext, name: &str, _args: &clap::ArgMatches) -> ServiceResult<()> {
        Err(crate::error::ServiceError::not_found(&format!("Command {name}")))
    }

    /// Adds the module's panels and dashboard cards to the admin site.
    fn admin(&self, _site: &mut crate::admin::AdminSite) {}

    /// Figures the module adds to each `/metrics` scrape (gauges: a lag, a backlog).
    async fn metrics(&self, _ctx: &AppContext) -> Vec<crate::metrics::Sample> {
        Vec::new()
    }

    /// Extra health checks (an external service the module needs).
    async fn health(&self, _ctx: &AppContext) -> Vec<HealthCheck> {
        Vec::new()
    }
}
