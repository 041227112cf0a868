//! Payments in the admin site: panels for orders, payouts, webhook events, ledger accounts,
//! subscriptions and Connect accounts, and the dashboard's payments card.
//!
//! Lists are [`SqlList`](saas_core::admin::SqlList)s, newest first, each filter and search
//! served by an index (migration `0003_admin_indexes`). Every action calls
//! [`PaymentsService`] with a staff [`Actor`], so the admin obeys the API's rules and answers
//! with its errors.

mod card;
mod connected_accounts;
mod ledger_accounts;
mod orders;
mod payouts;
mod subscriptions;
mod webhook_events;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use saas_auth::UserEmails;
use saas_core::admin::{AdminSite, AdminUser, Filter, ListPage, Section};
use saas_core::{AppContext, Db, ServiceError, ServiceResult};
use saas_toolkit::{Currency, Money};

use crate::service::{Actor, PaymentsService};

/// The navigation group of every payments panel.
const GROUP: &str = "Payments";

/// Adds the payments panels and card; `strategies` are the registered strategy names.
pub(crate) fn register(site: &mut AdminSite, strategies: Vec<String>) {
    site.panel(orders::OrdersPanel::new(strategies))
        .panel(payouts::PayoutsPanel::new())
        .panel(webhook_events::WebhookEventsPanel::new())
        .panel(ledger_accounts::LedgerAccountsPanel::new())
        .panel(subscriptions::SubscriptionsPanel::new())
        .panel(connected_accounts::ConnectedAccountsPanel::new())
        .card(card::PaymentsCard);
}

/// The service, and the staff member as the actor of what they do.
fn staff_service(ctx: &AppContext, staff: &AdminUser) -> ServiceResult<(PaymentsService, Actor)> {
    Ok((PaymentsService::get(ctx)?, Actor::staff(staff.id)))
}

/// A select filter of stored names.
fn filter_of(name: &'static str, label: &'static str, values: impl IntoIterator<Item = String>) -> Filter {
    Filter { name, label, choices: values.into_iter().map(|v| (v.clone(), v)).collect() }
}

/// An id from a URL; a malformed one is an object that does not exist.
fn object_id(id: &str, what: &str) -> ServiceResult<Uuid> {
    Uuid::parse_str(id.trim()).map_err(|_| ServiceError::not_found(what))
}

/// The detail page of another panel's object.
fn link(slug: &str, id: impl std::fmt::Display) -> Option<String> {
    Some(format!("/admin/{slug}/{id}/"))
}

/// `85.00 USD`.
fn money(amount_cents: i64, currency: &str) -> String {
    match Currency::parse(currency) {
        Ok(currency) => Money::new(amount_cents, currency).to_string(),
        Err(_) => format!("{amount_cents} {currency}"),
    }
}

/// [`money`] of two rendered cells (an integer and a currency code).
fn money_cells(amount: &str, currency: &str) -> String {
    match amount.parse() {
        Ok(cents) => money(cents, currency),
        Err(_) => format!("{amount} {currency}"),
    }
}

/// Replaces the cells `amount` and `amount + 1` (cents, currency) of every row with one
/// money cell.
fn merge_money(rows: &mut [Vec<String>], amount: usize) {
    for cells in rows {
        if cells.len() > amount + 1 {
            let currency = cells.remove(amount + 1);
            cells[amount] = money_cells(&cells[amount], &currency);
        }
    }
}

/// A timestamp as the site shows them.
fn at(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An optional timestamp (blank when absent).
fn at_opt(time: Option<DateTime<Utc>>) -> String {
    time.map(at).unwrap_or_default()
}

/// The emails of users, by id, through the app's user directory; empty when the directory
/// cannot answer (ids are shown instead).
struct People(UserEmails);

impl People {
    async fn of(ctx: &AppContext, ids: impl IntoIterator<Item = Uuid>) -> Self {
        match UserEmails::of(ctx, ids).await {
            Ok(emails) => Self(emails),
            Err(err) => {
                tracing::debug!(error = %err, "users could not be looked up for the admin; showing ids");
                Self(UserEmails::default())
            }
        }
    }

    /// Of the ids in the cells `columns` of every row.
    async fn of_cells(ctx: &AppContext, rows: &[Vec<String>], columns: &[usize]) -> Self {
        let ids = rows.iter().flat_map(|cells| columns.iter().filter_map(|&i| cells.get(i)?.parse().ok()));
        Self::of(ctx, ids.collect::<Vec<Uuid>>()).await
    }

    /// The email, else the id (for lists).
    fn short(&self, id: Uuid) -> String {
        self.0.short(id)
    }

    /// `email (id)`, else the id (for detail pages).
    fn long(&self, id: Uuid) -> String {
        self.0.long(id)
    }

    /// [`People::long`] of an optional user (blank when none).
    fn long_opt(&self, id: Option<Uuid>) -> String {
        id.map(|id| self.long(id)).unwrap_or_default()
    }

    /// Replaces the id cells `columns` of every row with emails.
    fn name_cells(&self, rows: &mut [Vec<String>], columns: &[usize]) {
        for cells in rows {
            for &i in columns {
                if let Some(id) = cells.get(i).and_then(|cell| cell.parse().ok()) {
                    cells[i] = self.short(id);
                }
            }
        }
    }
}

/// A list page's rows, as cells (to rewrite them), and back.
fn with_cells(page: &mut ListPage, rewrite: impl FnOnce(&mut [Vec<String>])) {
    let mut rows: Vec<Vec<String>> = page.rows.iter_mut().map(|row| std::mem::take(&mut row.cells)).collect();
    rewrite(&mut rows);
    for (row, cells) in page.rows.iter_mut().zip(rows) {
        row.cells = cells;
    }
}

/// Names the users of a page's id cells `columns`.
async fn name_people(ctx: &AppContext, page: &mut ListPage, columns: &[usize]) {
    let rows: Vec<Vec<String>> = page.rows.iter().map(|row| row.cells.clone()).collect();
    let people = People::of_cells(ctx, &rows, columns).await;
    with_cells(page, |rows| people.name_cells(rows, columns));
}

/// A section of rendered rows, each linking to `links(row)`.
fn section(
    title: &str,
    columns: &[&str],
    rows: Vec<Vec<String>>,
    links: impl Fn(&[String]) -> Option<String>,
) -> Section {
    let mut section = Section::new(title, columns);
    for cells in rows {
        let link = links(&cells);
        section.row(cells, link);
    }
    section
}

/// The transitions of a payment object as a "State history" section.
async fn history_section(ctx: &AppContext, service: &PaymentsService, object: Uuid) -> ServiceResult<Section> {
    let history = service.history(object).await?;
    let people = People::of(ctx, history.iter().filter_map(|t| t.actor_id)).await;
    let mut section = Section::new("State history", &["From", "To", "Action", "Actor", "Reason", "At"]);
    for t in history {
        let actor = t.actor_id.map(|id| people.short(id)).unwrap_or_else(|| "system".to_owned());
        section.row(vec![t.from_state, t.to_state, t.action, actor, t.reason, at(t.created_at)], None);
    }
    Ok(section)
}

/// A condition on `column` starting with one of `prefixes` (`$first`, `$first + 1`, …):
/// `LIKE` on PostgreSQL (served by a `text_pattern_ops` index), `GLOB` on SQLite, with
/// wildcards in the prefixes matched literally.
fn starts_with_any(db: &Db, column: &str, prefixes: &[String], first: usize) -> (String, Vec<String>) {
    let mut conditions = Vec::new();
    let mut patterns = Vec::new();
    for (i, prefix) in prefixes.iter().enumerate() {
        let (op, pattern) = saas_core::admin::prefix_pattern(db, prefix);
        conditions.push(format!("{column} {op} ${}", first + i));
        patterns.push(pattern);
    }
    let condition = if conditions.is_empty() { "1 = 0".to_owned() } else { format!("({})", conditions.join(" OR ")) };
    (condition, patterns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_show_with_their_currency() {
        assert_eq!(money(8_500, "usd"), "85.00 USD");
        assert_eq!(money(-1_505, "eur"), "-15.05 EUR");
        assert_eq!(money_cells("100", "gbp"), "1.00 GBP");
        assert_eq!(money_cells("n/a", "usd"), "n/a usd");
        let mut rows = vec![vec!["a".to_owned(), "250".to_owned(), "usd".to_owned(), "z".to_owned()]];
        merge_money(&mut rows, 1);
        assert_eq!(rows, vec![vec!["a".to_owned(), "2.50 USD".to_owned(), "z".to_owned()]]);
    }
}
