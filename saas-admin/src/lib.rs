#![doc = include_str!("../README.md")]

pub mod audit;
pub mod pages;
pub mod session;
#[cfg(feature = "testing")]
pub mod testing;

use saas_core::admin::AdminSite;
use saas_core::jobs::{JobsCard, JobsPanel};
use saas_core::{AppContext, Migrations, Module};

/// The admin site as a module: its pages, its tables (sessions, audit log), and the panels
/// of the platform itself (audit log, background jobs).
#[derive(Debug, Clone, Copy, Default)]
pub struct AdminModule;

impl Module for AdminModule {
    fn name(&self) -> &'static str {
        "admin"
    }

    fn migrations(&self) -> Migrations {
        Migrations::new(sqlx::migrate!("migrations/sqlite"), sqlx::migrate!("migrations/postgres"))
    }

    fn routes(&self, _ctx: &AppContext) -> axum::Router<AppContext> {
        pages::routes()
    }

    fn admin(&self, site: &mut AdminSite) {
        site.panel(JobsPanel).card(JobsCard).panel(audit::AuditLogPanel);
    }
}
