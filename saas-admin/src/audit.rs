//! The audit log: who did what to which object, when, with the fields before and after.

use async_trait::async_trait;
use chrono::Utc;
use serde_json::{Map, Value};
use uuid::Uuid;

use saas_core::admin::{
    AdminPanel, AdminUser, Column, Detail, Filter, Form, KeyKind, ListPage, ListQuery, Search, SqlList, SqlValue, table,
};
use saas_core::{AppContext, ServiceResult, with_pool};

/// Longest email kept for a refused sign-in (the longest valid address).
const MAX_EMAIL: usize = 254;

/// One audited action, sign-in or refusal.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    actor_id: Option<Uuid>,
    actor_email: String,
    panel: String,
    object_id: String,
    action: String,
    outcome: &'static str,
    message: String,
    before: Map<String, Value>,
    after: Map<String, Value>,
    input: Map<String, Value>,
}

impl AuditEntry {
    /// An entry of `user`'s `action` on `object_id` of `panel` (`session` for sign-in/out).
    pub fn by(user: &AdminUser, panel: &str, object_id: &str, action: &str) -> Self {
        let mut entry = Self::anonymous(&user.email, panel, object_id, action);
        entry.actor_id = Some(user.id);
        entry
    }

    /// An entry of someone not signed in (a refused sign-in): the email they tried.
    pub fn anonymous(email: &str, panel: &str, object_id: &str, action: &str) -> Self {
        Self {
            actor_id: None,
            actor_email: email.trim().to_lowercase().chars().take(MAX_EMAIL).collect(),
            panel: panel.to_owned(),
            object_id: object_id.to_owned(),
            action: action.to_owned(),
            outcome: "done",
            message: String::new(),
            before: Map::new(),
            after: Map::new(),
            input: Map::new(),
        }
    }

    /// It was done; `message` is what the staff member was shown.
    pub fn done(mut self, message: impl Into<String>) -> Self {
        self.outcome = "done";
        self.message = message.into();
        self
    }

    /// It was refused, with this message.
    pub fn refused(mut self, message: impl Into<String>) -> Self {
        self.outcome = "refused";
        self.message = message.into();
        self
    }

    /// The `(label, value)` fields before and after; only those that changed are kept.
    pub fn changes(mut self, before: &[(String, String)], after: &[(String, String)]) -> Self {
        (self.before, self.after) = changes(before, after);
        self
    }

    /// What the staff member submitted (secrets and the CSRF token left out).
    pub fn input(mut self, form: &Form) -> Self {
        self.input = form
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "csrf_token" | "password"))
            .map(|(name, value)| (name.clone(), Value::String(value.chars().take(1000).collect())))
            .collect();
        self
    }
}

/// The fields that differ between two `(label, value)` lists, as `(before, after)` objects.
pub fn changes(before: &[(String, String)], after: &[(String, String)]) -> (Map<String, Value>, Map<String, Value>) {
    let mut old = Map::new();
    let mut new = Map::new();
    for (label, value) in after {
        let previous = before.iter().find(|(l, _)| l == label).map(|(_, v)| v);
        if previous != Some(value) {
            old.insert(label.clone(), previous.map_or(Value::Null, |v| Value::String(v.clone())));
            new.insert(label.clone(), Value::String(value.clone()));
        }
    }
    for (label, value) in before {
        if !after.iter().any(|(l, _)| l == label) {
            old.insert(label.clone(), Value::String(value.clone()));
            new.insert(label.clone(), Value::Null);
        }
    }
    (old, new)
}

/// Writes an entry.
pub async fn record(ctx: &AppContext, entry: AuditEntry) -> ServiceResult<()> {
    with_pool!(ctx.db(), pool => sqlx::query(
        "INSERT INTO admin_audit_log (id, actor_id, actor_email, panel, object_id, action, outcome, message, \
         before_values, after_values, input_values, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
        .bind(Uuid::now_v7()).bind(entry.actor_id).bind(&entry.actor_email).bind(&entry.panel)
        .bind(&entry.object_id).bind(&entry.action).bind(entry.outcome).bind(&entry.message)
        .bind(sqlx::types::Json(Value::Object(entry.before))).bind(sqlx::types::Json(Value::Object(entry.after)))
        .bind(sqlx::types::Json(Value::Object(entry.input))).bind(Utc::now())
        .execute(pool).await.map(|done| done.rows_affected()))?;
    Ok(())
}

/// Writes an entry where the page must be answered whatever happens (a refusal, or an
/// action already done): a failure to write it is logged with the whole entry.
pub async fn record_or_log(ctx: &AppContext, entry: AuditEntry) {
    let copy = entry.clone();
    if let Err(err) = record(ctx, entry).await {
        tracing::error!(error = %err, entry = ?copy, "audit entry not written");
    }
}

/// The audit log as a panel.
pub struct AuditLogPanel;

fn list() -> SqlList {
    SqlList::new("admin_audit_log", "id", KeyKind::Uuid)
        .order_by("created_at")
        .columns(&["created_at", "actor_email", "panel", "object_id", "action", "outcome", "message"])
        .search(Search::LowerPrefix("actor_email"))
        .search(Search::Exact("object_id"))
        .filter_text("panel", "panel")
        .filter_text("outcome", "outcome")
}

#[async_trait]
impl AdminPanel for AuditLogPanel {
    fn slug(&self) -> &'static str {
        "audit-log"
    }

    fn title(&self) -> &'static str {
        "Audit log"
    }

    fn group(&self) -> &'static str {
        "Site"
    }

    fn columns(&self) -> Vec<Column> {
        ["When", "Who", "Panel", "Object", "Action", "Outcome", "Message"]
            .into_iter()
            .map(|label| Column { label })
            .collect()
    }

    fn search_hint(&self) -> Option<&'static str> {
        Some("staff email or object id")
    }

    fn filters(&self) -> Vec<Filter> {
        vec![Filter::new("outcome", "Outcome", &["done", "refused"])]
    }

    async fn list(&self, ctx: &AppContext, query: &ListQuery) -> ServiceResult<ListPage> {
        list().fetch(ctx.db(), query).await
    }

    async fn detail(&self, ctx: &AppContext, id: &str) -> ServiceResult<Option<Detail>> {
        let Ok(id) = Uuid::parse_str(id) else { return Ok(None) };
        let rows = table(
            ctx.db(),
            "SELECT created_at, actor_email, panel, object_id, action, outcome, message, before_values, after_values, \
             input_values FROM admin_audit_log WHERE id = $1",
            &[SqlValue::Uuid(id)],
        )
        .await?;
        let Some(row) = rows.into_iter().next() else { return Ok(None) };
        let labels = ["When", "Who", "Panel", "Object", "Action", "Outcome", "Message", "Before", "After", "Input"];
        Ok(Some(Detail::new(format!("{} {} {}", row[4], row[2], row[3])).fields(&labels, row)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_fields_are_kept() {
        let before = vec![("Active".to_owned(), "yes".to_owned()), ("Email".to_owned(), "a@x".to_owned())];
        let after = vec![("Active".to_owned(), "no".to_owned()), ("Email".to_owned(), "a@x".to_owned())];
        let (old, new) = changes(&before, &after);
        assert_eq!(Value::Object(old), serde_json::json!({"Active": "yes"}));
        assert_eq!(Value::Object(new), serde_json::json!({"Active": "no"}));
    }
}
