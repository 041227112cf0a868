//! The contract of the admin site: what a module contributes (panels, dashboard cards,
//! staff accounts) through [`Module::admin`](crate::Module::admin). The site itself (pages,
//! sessions, audit log) is the `saas-admin` crate; [`SqlList`] lists a table with keyset
//! pagination for panels that need nothing more.

mod panel;
mod sql;

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::context::AppContext;
use crate::error::ServiceResult;

pub use panel::{
    ActionSpec, AdminPanel, Column, Detail, FieldKind, Filter, Form, FormField, ListPage, ListQuery, ListRow, Section,
};
pub use sql::{
    DASHBOARD_CAP, KeyKind, Search, SqlList, SqlValue, Tally, count, count_upto, prefix_pattern, table, table_size,
};

/// A signed-in staff member, as the site and the audit log know them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AdminUser {
    /// User id.
    pub id: Uuid,
    /// Email, shown in the header and the audit log.
    pub email: String,
}

/// Who may sign in to the admin: implemented by the accounts module (`saas-auth`).
#[async_trait]
pub trait AdminAccounts: Send + Sync + 'static {
    /// Checks an email and password; only an active staff user is returned. A wrong
    /// password and a non-staff account are told apart only by the error code
    /// (`auth.invalid_credentials` / `admin.not_staff`), never by timing of the hash.
    async fn sign_in(&self, ctx: &AppContext, email: &str, password: &str) -> ServiceResult<AdminUser>;

    /// The user behind a session, if still active and staff (checked on every page).
    async fn staff(&self, ctx: &AppContext, id: Uuid) -> ServiceResult<Option<AdminUser>>;
}

/// One figure of a dashboard card, optionally linking to a filtered list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CardItem {
    /// What is counted.
    pub label: String,
    /// The figure.
    pub value: String,
    /// `/admin/…` page showing the rows counted.
    pub link: Option<String>,
}

/// A dashboard card: counts and recent activity of one module.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Card {
    /// Heading.
    pub title: String,
    /// Figures.
    pub items: Vec<CardItem>,
}

impl Card {
    /// An empty card.
    pub fn new(title: impl Into<String>) -> Self {
        Self { title: title.into(), items: Vec::new() }
    }

    /// Adds a figure, linking to `link` when given.
    pub fn item(mut self, label: impl Into<String>, value: impl ToString, link: Option<&str>) -> Self {
        self.items.push(CardItem { label: label.into(), value: value.to_string(), link: link.map(str::to_owned) });
        self
    }
}

/// Computes a dashboard card on each visit.
#[async_trait]
pub trait DashboardCard: Send + Sync + 'static {
    /// The card as of now.
    async fn card(&self, ctx: &AppContext) -> ServiceResult<Card>;
}

/// What every module contributed to the admin site.
#[derive(Clone, Default)]
pub struct AdminSite {
    panels: Vec<Arc<dyn AdminPanel>>,
    cards: Vec<Arc<dyn DashboardCard>>,
    accounts: Option<Arc<dyn AdminAccounts>>,
}

impl AdminSite {
    /// Adds a panel (its slug must be unique; a later one with the same slug replaces it).
    pub fn panel(&mut self, panel: impl AdminPanel) -> &mut Self {
        let panel: Arc<dyn AdminPanel> = Arc::new(panel);
        self.panels.retain(|p| p.slug() != panel.slug());
        self.panels.push(panel);
        self
    }

    /// Adds a dashboard card.
    pub fn card(&mut self, card: impl DashboardCard) -> &mut Self {
        self.cards.push(Arc::new(card));
        self
    }

    /// Sets who may sign in.
    pub fn accounts(&mut self, accounts: impl AdminAccounts) -> &mut Self {
        self.accounts = Some(Arc::new(accounts));
        self
    }

    /// The panels, in the order they were added.
    pub fn panels(&self) -> &[Arc<dyn AdminPanel>] {
        &self.panels
    }

    /// The panel with this slug.
    pub fn find(&self, slug: &str) -> Option<&Arc<dyn AdminPanel>> {
        self.panels.iter().find(|p| p.slug() == slug)
    }

    /// The dashboard cards.
    pub fn cards(&self) -> &[Arc<dyn DashboardCard>] {
        &self.cards
    }

    /// Who may sign in, if a module provides accounts.
    pub fn staff_accounts(&self) -> Option<&Arc<dyn AdminAccounts>> {
        self.accounts.as_ref()
    }
}

impl std::fmt::Debug for AdminSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSite")
            .field("panels", &self.panels.iter().map(|p| p.slug()).collect::<Vec<_>>())
            .field("cards", &self.cards.len())
            .field("accounts", &self.accounts.is_some())
            .finish()
    }
}
