//! The audit log: who did what to which object, when, with the fields before and after.

use async_trait::async_trait;
use chrono::Utc;
use serde_json::{Map, Value};
use uuid::Uuid;

use saas_core::admin::{
    AdminPanel, Column, Detail, Filter, KeyKind, ListPage, ListQuery, Search, SqlList, SqlValue, table,
};
use saas_core::{AppContext, ServiceResult, with_pool};

/// One audited action.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// Staff member (none for a failed sign-in).
    pub actor_id: Option<Uuid>,
    /// Their email (or the email tried).
    pub actor_email: &'a str,
    /// Panel slug (`session` for sign-in and sign-out).
    pub panel: &'a str,
    /// Object id.
    pub object_id: &'a str,
    /// Action name (`deactivate`, `edit`, `signed_in`).
    pub action: &'a str,
    /// `done` or `refused`.
    pub outcome: &'a str,
    /// What the staff member was shown.
    pub message: &'a str,
    /// The fields that changed, before.
    pub before: Map<String, Value>,
    /// The fields that changed, after.
    pub after: Map<String, Value>,
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
pub async fn record(ctx: &AppContext, entry: AuditEntry<'_>) -> ServiceResult<()> {
    let before = Value::Object(entry.before);
    let after = Value::Object(entry.after);
    with_pool!(ctx.db(), pool => sqlx::query(
        "INSERT INTO admin_audit_log (id, actor_id, actor_email, panel, object_id, action, outcome, message, \
         before_values, after_values, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
        .bind(Uuid::now_v7()).bind(entry.actor_id).bind(entry.actor_email).bind(entry.panel).bind(entry.object_id)
        .bind(entry.action).bind(entry.outcome).bind(entry.message)
        .bind(sqlx::types::Json(before)).bind(sqlx::types::Json(after)).bind(Utc::now())
        .execute(pool).await.map(|done| done.rows_affected()))?;
    Ok(())
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
            "SELECT created_at, actor_email, panel, object_id, action, outcome, message, before_values, after_values \
             FROM admin_audit_log WHERE id = $1",
            &[SqlValue::Uuid(id)],
        )
        .await?;
        let Some(row) = rows.into_iter().next() else { return Ok(None) };
        let labels = ["When", "Who", "Panel", "Object", "Action", "Outcome", "Message", "Before", "After"];
        let mut detail = Detail::new(format!("{} {} {}", row[4], row[2], row[3]));
        for (label, value) in labels.iter().zip(row) {
            detail = detail.field(label, value);
        }
        Ok(Some(detail))
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
