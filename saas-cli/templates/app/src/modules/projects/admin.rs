//! {{ Plural }} in the admin site (`/admin/{{ plural }}/`): a list newest first, a detail page,
//! and a delete action that goes through the service, as the API does.

use async_trait::async_trait;
use uuid::Uuid;

use saas_core::admin::{
    ActionSpec, AdminPanel, AdminUser, Column, Detail, Form, KeyKind, ListPage, ListQuery, Search, SqlList, SqlValue,
    table,
};
use saas_core::{AppContext, ServiceError, ServiceResult};

use super::service::{{ Plural }}Service;

/// The {{ plural }} panel.
#[derive(Debug, Default, Clone, Copy)]
pub struct {{ Plural }}Panel;

#[async_trait]
impl AdminPanel for {{ Plural }}Panel {
    fn slug(&self) -> &'static str {
        "{{ plural }}"
    }

    fn title(&self) -> &'static str {
        "{{ Plural }}"
    }

    fn group(&self) -> &'static str {
        "App"
    }

    fn columns(&self) -> Vec<Column> {
        ["Name", "Owner", "Created"].into_iter().map(|label| Column { label }).collect()
    }

    fn search_hint(&self) -> Option<&'static str> {
        Some("id")
    }

    fn actions(&self) -> Vec<ActionSpec> {
        vec![ActionSpec::new("delete", "Delete").dangerous()]
    }

    async fn list(&self, ctx: &AppContext, query: &ListQuery) -> ServiceResult<ListPage> {
        // Ids are UUIDv7: newest first is key order.
        let list = SqlList::new("{{ plural }}", "id", KeyKind::Uuid)
            .columns(&["name", "owner_id", "created_at"])
            .search(Search::Key);
        list.fetch(ctx.db(), query).await
    }

    async fn detail(&self, ctx: &AppContext, id: &str) -> ServiceResult<Option<Detail>> {
        let Ok(id) = Uuid::parse_str(id) else { return Ok(None) };
        let sql = "SELECT name, description, owner_id, created_at, updated_at FROM {{ plural }} WHERE id = $1";
        let rows = table(ctx.db(), sql, &[SqlValue::Uuid(id)]).await?;
        Ok(rows.into_iter().next().map(|row| {
            let mut detail = Detail::new(row[0].clone()).field("Id", id);
            for (label, value) in ["Name", "Description", "Owner", "Created", "Updated"].iter().zip(row) {
                detail = detail.field(label, value);
            }
            detail
        }))
    }

    async fn act(&self, ctx: &AppContext, _actor: &AdminUser, id: &str, action: &str, _form: &Form) -> ServiceResult<String> {
        let missing = || ServiceError::not_found("{{ Singular }}");
        let id = Uuid::parse_str(id).map_err(|_| missing())?;
        let rows = table(ctx.db(), "SELECT owner_id FROM {{ plural }} WHERE id = $1", &[SqlValue::Uuid(id)]).await?;
        let owner = rows.first().and_then(|row| Uuid::parse_str(&row[0]).ok()).ok_or_else(missing)?;
        match action {
            "delete" => {
                {{ Plural }}Service::new(ctx).delete(owner, id).await?;
                Ok("The {{ singular }} is deleted.".to_owned())
            }
            _ => Err(ServiceError::not_found("Action")),
        }
    }
}
