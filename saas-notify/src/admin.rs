//! Notifications in the admin site: notification types (created and edited through the
//! service, so a template that does not compile is refused as from the API), the
//! notifications sent, their deliveries with a staff retry, and a dashboard card.

use std::sync::RwLock;

use async_trait::async_trait;
use chrono::{NaiveTime, Utc};
use uuid::Uuid;

use saas_auth::UserEmails;
use saas_core::admin::{
    ActionSpec, AdminPanel, AdminSite, AdminUser, Card, Column, DASHBOARD_CAP, DashboardCard, Detail, FieldKind,
    Filter, Form, FormField, KeyKind, ListPage, ListQuery, Search, Section, SqlList, SqlValue, count_upto, table,
};
use saas_core::{AppContext, ServiceError, ServiceResult};

use crate::models::{Channel, DeliveryStatus, NotificationType};
use crate::service::{NewType, NotifyService, TypeUpdate};

const GROUP: &str = "Notifications";

/// The channels a type uses, as one cell (in-app always).
const CHANNELS: &str = "'in_app' || CASE WHEN push_enabled THEN ', push' ELSE '' END \
     || CASE WHEN email_enabled THEN ', email' ELSE '' END \
     || CASE WHEN websocket_enabled THEN ', websocket' ELSE '' END";

/// Adds the notification panels and card to the admin site.
pub(crate) fn register(site: &mut AdminSite) {
    site.panel(TypesPanel::new()).panel(NotificationsPanel::new()).panel(DeliveriesPanel::new()).card(NotifyCard);
}

/// A list page with the user ids of column `index` shown as emails.
async fn page_with_users(ctx: &AppContext, mut page: ListPage, index: usize) -> ServiceResult<ListPage> {
    let known =
        UserEmails::of_cells(ctx, page.rows.iter().filter_map(|row| row.cells.get(index).map(String::as_str))).await?;
    for row in &mut page.rows {
        if let Some(cell) = row.cells.get_mut(index) {
            *cell = known.short(&*cell);
        }
    }
    Ok(page)
}

/// The one row `sql` selects for `id`, rendered as text.
async fn record(ctx: &AppContext, sql: &str, id: SqlValue) -> ServiceResult<Option<Vec<String>>> {
    Ok(table(ctx.db(), sql, &[id]).await?.into_iter().next())
}

/// Whether a form's checkbox is ticked.
fn ticked(form: &Form, name: &str) -> bool {
    matches!(form.get(name).map(|v| v.trim()), Some("true" | "on" | "1" | "yes"))
}

/// A form's text field, empty when absent.
fn text(form: &Form, name: &str) -> String {
    form.get(name).cloned().unwrap_or_default()
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// Notification types: their templates and channels, created and edited here.
struct TypesPanel {
    list: SqlList,
}

impl TypesPanel {
    fn new() -> Self {
        let list = SqlList::new("notify_types", "key", KeyKind::Text)
            .order_by("created_at")
            .columns(&["key", "display_name", "title_template", CHANNELS, "is_active", "updated_at"])
            .search(Search::Prefix("key"));
        Self { list }
    }
}

#[async_trait]
impl AdminPanel for TypesPanel {
    fn slug(&self) -> &'static str {
        "notification-types"
    }

    fn title(&self) -> &'static str {
        "Notification types"
    }

    fn group(&self) -> &'static str {
        GROUP
    }

    fn columns(&self) -> Vec<Column> {
        ["Key", "Name", "Title template", "Channels", "Active", "Updated"]
            .into_iter()
            .map(|label| Column { label })
            .collect()
    }

    fn search_hint(&self) -> Option<&'static str> {
        Some("start of the key")
    }

    fn form(&self) -> Option<Vec<FormField>> {
        Some(vec![
            FormField::new("key", "Key", FieldKind::Text)
                .required()
                .help("1–64 of a–z, 0–9 and _ (new_message); fixed once the type exists."),
            FormField::new("display_name", "Display name", FieldKind::Text).required(),
            FormField::new("title_template", "Title template", FieldKind::Text)
                .required()
                .help("A minijinja template: New message from {{ sender_name }}."),
            FormField::new("body_template", "Body template", FieldKind::TextArea)
                .required()
                .help("A minijinja template; every variable must be in the context it is sent with."),
            FormField::new("push_enabled", "Push to devices", FieldKind::Checkbox),
            FormField::new("email_enabled", "Email", FieldKind::Checkbox),
            FormField::new("websocket_enabled", "WebSocket", FieldKind::Checkbox),
            FormField::new("is_active", "Active", FieldKind::Checkbox).help("Inactive types cannot be sent."),
        ])
    }

    async fn list(&self, ctx: &AppContext, query: &ListQuery) -> ServiceResult<ListPage> {
        self.list.fetch(ctx.db(), query).await
    }

    async fn detail(&self, ctx: &AppContext, id: &str) -> ServiceResult<Option<Detail>> {
        let Some(kind) = NotifyService::get(ctx)?.store().type_by_key(id).await? else { return Ok(None) };
        let mut latest = table(
            ctx.db(),
            "SELECT id, recipient_id, title, is_read, created_at FROM notify_notifications \
             WHERE CAST(type_id AS TEXT) = $1 ORDER BY created_at DESC, id DESC LIMIT 20",
            &[SqlValue::Text(kind.id.to_string())],
        )
        .await?;
        let known = UserEmails::of_cells(ctx, latest.iter().filter_map(|row| row.get(1).map(String::as_str))).await?;
        let mut section = Section::new("Latest notifications", &["Id", "User", "Title", "Read", "Created"]);
        for mut cells in latest.drain(..) {
            if let Some(user) = cells.get_mut(1) {
                *user = known.short(&*user);
            }
            let link = cells.first().map(|id| format!("/admin/notifications/{id}/"));
            section.row(cells, link);
        }
        let channels: Vec<&str> = Channel::ALL.into_iter().filter(|c| kind.supports(*c)).map(Channel::as_str).collect();
        Ok(Some(
            Detail::new(kind.display_name.clone())
                .field("Key", &kind.key)
                .field("Display name", &kind.display_name)
                .field("Title template", &kind.title_template)
                .field("Body template", &kind.body_template)
                .field("Channels", channels.join(", "))
                .field("Active", yes_no(kind.is_active))
                .field("Created", kind.created_at.format("%Y-%m-%d %H:%M:%S UTC"))
                .field("Updated", kind.updated_at.format("%Y-%m-%d %H:%M:%S UTC"))
                .section(section),
        ))
    }

    async fn values(&self, ctx: &AppContext, id: &str) -> ServiceResult<Option<Form>> {
        let Some(kind) = NotifyService::get(ctx)?.store().type_by_key(id).await? else { return Ok(None) };
        Ok(Some(type_form(&kind)))
    }

    async fn save(&self, ctx: &AppContext, _actor: &AdminUser, id: Option<&str>, form: &Form) -> ServiceResult<String> {
        let service = NotifyService::get(ctx)?;
        let update = TypeUpdate {
            display_name: Some(text(form, "display_name")),
            title_template: Some(text(form, "title_template")),
            body_template: Some(text(form, "body_template")),
            push_enabled: Some(ticked(form, "push_enabled")),
            email_enabled: Some(ticked(form, "email_enabled")),
            websocket_enabled: Some(ticked(form, "websocket_enabled")),
            is_active: Some(ticked(form, "is_active")),
        };
        let Some(key) = id else {
            let created = service
                .create_type(NewType {
                    key: text(form, "key"),
                    display_name: text(form, "display_name"),
                    title_template: text(form, "title_template"),
                    body_template: text(form, "body_template"),
                    push_enabled: ticked(form, "push_enabled"),
                    email_enabled: ticked(form, "email_enabled"),
                    websocket_enabled: ticked(form, "websocket_enabled"),
                })
                .await?;
            // A new type is active; one saved unticked is deactivated right away.
            if !ticked(form, "is_active") {
                let inactive = TypeUpdate { is_active: Some(false), ..TypeUpdate::default() };
                service.update_type(&created.key, inactive).await?;
            }
            return Ok(created.key);
        };
        let current = service.notification_type(key).await?;
        let submitted = text(form, "key");
        if !submitted.trim().is_empty() && submitted.trim() != current.key {
            return Err(ServiceError::invalid_field("key", "The key of a type cannot be changed."));
        }
        Ok(service.update_type(key, update).await?.key)
    }
}

/// The edit form's values of a type.
fn type_form(kind: &NotificationType) -> Form {
    let flag = |value: bool| value.to_string();
    Form::from([
        ("key".to_owned(), kind.key.clone()),
        ("display_name".to_owned(), kind.display_name.clone()),
        ("title_template".to_owned(), kind.title_template.clone()),
        ("body_template".to_owned(), kind.body_template.clone()),
        ("push_enabled".to_owned(), flag(kind.push_enabled)),
        ("email_enabled".to_owned(), flag(kind.email_enabled)),
        ("websocket_enabled".to_owned(), flag(kind.websocket_enabled)),
        ("is_active".to_owned(), flag(kind.is_active)),
    ])
}

/// Notifications sent to users, newest first.
struct NotificationsPanel {
    list: SqlList,
    /// The type filter's choices, `(id, name)`: the types seen by the last list (filters are
    /// declared without a database at hand).
    types: RwLock<Vec<(String, String)>>,
}

impl NotificationsPanel {
    fn new() -> Self {
        let list =
            SqlList::new("notify_notifications n JOIN notify_types t ON t.id = n.type_id", "n.id", KeyKind::Uuid)
                .order_by("n.created_at")
                .columns(&["n.id", "n.recipient_id", "t.key", "n.title", "n.is_read", "n.created_at"])
                .search(Search::Key)
                .filter_bool("read", "n.is_read")
                // The type's id as text: filters bind text, and an index serves this expression.
                .filter_text("type", "CAST(n.type_id AS TEXT)");
        Self { list, types: RwLock::new(Vec::new()) }
    }
}

#[async_trait]
impl AdminPanel for NotificationsPanel {
    fn slug(&self) -> &'static str {
        "notifications"
    }

    fn title(&self) -> &'static str {
        "Notifications"
    }

    fn group(&self) -> &'static str {
        GROUP
    }

    fn columns(&self) -> Vec<Column> {
        ["Id", "User", "Type", "Title", "Read", "Created"].into_iter().map(|label| Column { label }).collect()
    }

    fn search_hint(&self) -> Option<&'static str> {
        Some("notification id")
    }

    fn filters(&self) -> Vec<Filter> {
        let types =
            self.types.read().map(|types| types.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone());
        vec![Filter::yes_no("read", "Read"), Filter { name: "type", label: "Type", choices: types }]
    }

    async fn list(&self, ctx: &AppContext, query: &ListQuery) -> ServiceResult<ListPage> {
        let types = NotifyService::get(ctx)?.types().await?;
        // A type named by its key (`?type=new_message`, in a hand-written link) is its id.
        let mut query = query.clone();
        if let Some(chosen) = query.filters.get_mut("type")
            && let Some(kind) = types.iter().find(|kind| kind.key == *chosen)
        {
            *chosen = kind.id.to_string();
        }
        let choices: Vec<(String, String)> =
            types.into_iter().map(|kind| (kind.id.to_string(), kind.display_name)).collect();
        match self.types.write() {
            Ok(mut known) => *known = choices,
            Err(poisoned) => *poisoned.into_inner() = choices,
        }
        let page = self.list.fetch(ctx.db(), &query).await?;
        page_with_users(ctx, page, 1).await
    }

    async fn detail(&self, ctx: &AppContext, id: &str) -> ServiceResult<Option<Detail>> {
        let Ok(id) = Uuid::parse_str(id) else { return Ok(None) };
        let Some(row) = record(
            ctx,
            "SELECT n.id, n.recipient_id, t.key, n.title, n.body, n.data, n.actor_id, n.source_type, n.source_id, \
             n.is_read, n.read_at, n.created_at FROM notify_notifications n JOIN notify_types t ON t.id = n.type_id \
             WHERE n.id = $1",
            SqlValue::Uuid(id),
        )
        .await?
        else {
            return Ok(None);
        };
        let cell = |i: usize| row.get(i).cloned().unwrap_or_default();
        let known =
            UserEmails::of_cells(ctx, [row.get(1), row.get(6)].into_iter().flatten().map(String::as_str)).await?;
        let deliveries = table(
            ctx.db(),
            "SELECT id, channel, status, attempts, provider_message_id, last_error, created_at, updated_at \
             FROM notify_deliveries WHERE notification_id = $1 ORDER BY created_at, id",
            &[SqlValue::Uuid(id)],
        )
        .await?;
        let mut section = Section::new(
            "Deliveries",
            &["Id", "Channel", "Status", "Attempts", "Provider id", "Last error", "Created", "Updated"],
        );
        for cells in deliveries {
            let link = cells.first().map(|id| format!("/admin/deliveries/{id}/"));
            section.row(cells, link);
        }
        let source = match (cell(7), cell(8)) {
            (kind, id) if kind.is_empty() && id.is_empty() => String::new(),
            (kind, id) => format!("{kind} {id}"),
        };
        Ok(Some(
            Detail::new(cell(3))
                .field("Id", cell(0))
                .field("User", known.long(cell(1)))
                .field("Type", cell(2))
                .field("Title", cell(3))
                .field("Body", cell(4))
                .field("Data", cell(5))
                .field("Actor", known.long(cell(6)))
                .field("Source", source)
                .field("Read", cell(9))
                .field("Read at", cell(10))
                .field("Created", cell(11))
                .section(section),
        ))
    }
}

/// Deliveries: one channel's attempts at one notification, with a staff retry.
struct DeliveriesPanel {
    list: SqlList,
}

impl DeliveriesPanel {
    fn new() -> Self {
        let list = SqlList::new("notify_deliveries", "id", KeyKind::Uuid)
            .order_by("created_at")
            .columns(&["id", "recipient_id", "type_key", "channel", "status", "attempts", "last_error", "created_at"])
            .search(Search::Key)
            .filter_text("channel", "channel")
            .filter_text("status", "status");
        Self { list }
    }
}

#[async_trait]
impl AdminPanel for DeliveriesPanel {
    fn slug(&self) -> &'static str {
        "deliveries"
    }

    fn title(&self) -> &'static str {
        "Deliveries"
    }

    fn group(&self) -> &'static str {
        GROUP
    }

    fn columns(&self) -> Vec<Column> {
        ["Id", "User", "Type", "Channel", "Status", "Attempts", "Last error", "Created"]
            .into_iter()
            .map(|label| Column { label })
            .collect()
    }

    fn search_hint(&self) -> Option<&'static str> {
        Some("delivery id")
    }

    fn filters(&self) -> Vec<Filter> {
        let channels: Vec<&str> =
            Channel::ALL.into_iter().filter(|c| *c != Channel::InApp).map(Channel::as_str).collect();
        let statuses = [
            DeliveryStatus::Pending,
            DeliveryStatus::Sending,
            DeliveryStatus::Sent,
            DeliveryStatus::Failed,
            DeliveryStatus::Abandoned,
        ]
        .map(DeliveryStatus::as_str);
        vec![Filter::new("channel", "Channel", &channels), Filter::new("status", "Status", &statuses)]
    }

    fn actions(&self) -> Vec<ActionSpec> {
        vec![ActionSpec::new("retry", "Retry delivery")]
    }

    async fn list(&self, ctx: &AppContext, query: &ListQuery) -> ServiceResult<ListPage> {
        let page = self.list.fetch(ctx.db(), query).await?;
        page_with_users(ctx, page, 1).await
    }

    async fn detail(&self, ctx: &AppContext, id: &str) -> ServiceResult<Option<Detail>> {
        let Ok(id) = Uuid::parse_str(id) else { return Ok(None) };
        let Some(row) = record(
            ctx,
            "SELECT id, notification_id, recipient_id, type_key, channel, device_id, title, body, data, status, \
             provider_message_id, attempts, last_error, created_at, updated_at FROM notify_deliveries WHERE id = $1",
            SqlValue::Uuid(id),
        )
        .await?
        else {
            return Ok(None);
        };
        let cell = |i: usize| row.get(i).cloned().unwrap_or_default();
        let known = UserEmails::of_cells(ctx, row.get(2).map(String::as_str)).await?;
        Ok(Some(
            Detail::new(format!("{} delivery {}", cell(4), cell(0)))
                .field("Id", cell(0))
                .field("Notification", cell(1))
                .field("User", known.long(cell(2)))
                .field("Type", cell(3))
                .field("Channel", cell(4))
                .field("Device", cell(5))
                .field("Title", cell(6))
                .field("Body", cell(7))
                .field("Data", cell(8))
                .field("Status", cell(9))
                .field("Provider message id", cell(10))
                .field("Attempts", cell(11))
                .field("Last error", cell(12))
                .field("Created", cell(13))
                .field("Updated", cell(14)),
        ))
    }

    async fn act(
        &self,
        ctx: &AppContext,
        _actor: &AdminUser,
        id: &str,
        action: &str,
        _form: &Form,
    ) -> ServiceResult<String> {
        if action != "retry" {
            return Err(ServiceError::not_found(&format!("Action {action}")));
        }
        let id = Uuid::parse_str(id).map_err(|_| ServiceError::not_found("Delivery"))?;
        NotifyService::get(ctx)?.retry_delivery(id).await?;
        Ok("Delivery queued for another attempt.".to_owned())
    }
}

/// Failed deliveries and today's notifications.
struct NotifyCard;

#[async_trait]
impl DashboardCard for NotifyCard {
    async fn card(&self, ctx: &AppContext) -> ServiceResult<Card> {
        let today = Utc::now().date_naive().and_time(NaiveTime::MIN).and_utc();
        let db = ctx.db();
        let failed = [SqlValue::Text(DeliveryStatus::Failed.as_str().to_owned())];
        let failed = count_upto(db, "notify_deliveries WHERE status = $1", &failed, DASHBOARD_CAP).await?;
        let since = [SqlValue::Time(today)];
        let sent = count_upto(db, "notify_notifications WHERE created_at >= $1", &since, DASHBOARD_CAP).await?;
        Ok(Card::new("Notifications").item("Failed deliveries", failed, Some("/admin/deliveries/?status=failed")).item(
            "Notifications sent today",
            sent,
            Some("/admin/notifications/"),
        ))
    }
}
