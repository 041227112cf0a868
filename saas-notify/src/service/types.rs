//! Notification types: created, changed, deactivated and (when unused) deleted by the app
//! or its staff. Templates are checked when saved, not when sent.

use chrono::Utc;
use serde::Deserialize;

use saas_core::{ServiceError, ServiceResult, ValidationErrors};
use saas_toolkit::templates::Templates;

use super::{NotifyService, type_not_found};
use crate::models::NotificationType;

/// A new type. Channels default as the domain says: push on, email off, websocket on.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct NewType {
    /// Unique key: 1–64 of `[a-z0-9_]`.
    pub key: String,
    /// Name shown to staff and in preferences.
    pub display_name: String,
    /// minijinja template of the title.
    pub title_template: String,
    /// minijinja template of the body.
    pub body_template: String,
    /// Pushed to devices (default on).
    #[serde(default = "on")]
    pub push_enabled: bool,
    /// Emailed (default off).
    #[serde(default)]
    pub email_enabled: bool,
    /// Sent to open sockets (default on).
    #[serde(default = "on")]
    pub websocket_enabled: bool,
}

fn on() -> bool {
    true
}

/// Changes to a type; absent fields stay.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct TypeUpdate {
    /// Name.
    pub display_name: Option<String>,
    /// Title template.
    pub title_template: Option<String>,
    /// Body template.
    pub body_template: Option<String>,
    /// Push.
    pub push_enabled: Option<bool>,
    /// Email.
    pub email_enabled: Option<bool>,
    /// Sockets.
    pub websocket_enabled: Option<bool>,
    /// Active.
    pub is_active: Option<bool>,
}

/// Checks the fields of a type: key shape, name, template syntax.
fn check(kind: &NotificationType) -> ServiceResult<()> {
    let mut errors = ValidationErrors::default();
    let key_ok = !kind.key.is_empty()
        && kind.key.len() <= 64
        && kind.key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !key_ok {
        errors.add("key", "Use 1–64 of a–z, 0–9 and _.");
    }
    if kind.display_name.trim().is_empty() {
        errors.add("display_name", "This field may not be blank.");
    }
    let templates = Templates::new();
    for (field, source) in [("title_template", &kind.title_template), ("body_template", &kind.body_template)] {
        if source.trim().is_empty() {
            errors.add(field, "This field may not be blank.");
        } else if let Err(err) = templates.variables(source) {
            errors.add(field, err.message().to_owned());
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors.into_error()) }
}

impl NotifyService {
    /// Every notification type.
    pub async fn types(&self) -> ServiceResult<Vec<NotificationType>> {
        self.store().types().await
    }

    /// One type by key.
    pub async fn notification_type(&self, key: &str) -> ServiceResult<NotificationType> {
        self.store().type_by_key(key).await?.ok_or_else(|| type_not_found(key))
    }

    /// Creates a type; a template with a syntax error is refused here, not at send time.
    pub async fn create_type(&self, new: NewType) -> ServiceResult<NotificationType> {
        let now = Utc::now();
        let kind = NotificationType {
            id: 0,
            key: new.key.trim().to_owned(),
            display_name: new.display_name.trim().to_owned(),
            title_template: new.title_template,
            body_template: new.body_template,
            push_enabled: new.push_enabled,
            email_enabled: new.email_enabled,
            websocket_enabled: new.websocket_enabled,
            is_active: true,
            created_at: now,
            updated_at: now,
        };
        check(&kind)?;
        self.store().insert_type(&kind).await
    }

    /// Changes a type (deactivate it with `is_active: false`).
    pub async fn update_type(&self, key: &str, update: TypeUpdate) -> ServiceResult<NotificationType> {
        let mut kind = self.notification_type(key).await?;
        if let Some(name) = update.display_name {
            kind.display_name = name.trim().to_owned();
        }
        if let Some(template) = update.title_template {
            kind.title_template = template;
        }
        if let Some(template) = update.body_template {
            kind.body_template = template;
        }
        kind.push_enabled = update.push_enabled.unwrap_or(kind.push_enabled);
        kind.email_enabled = update.email_enabled.unwrap_or(kind.email_enabled);
        kind.websocket_enabled = update.websocket_enabled.unwrap_or(kind.websocket_enabled);
        kind.is_active = update.is_active.unwrap_or(kind.is_active);
        check(&kind)?;
        let saved = self.store().update_type(&kind).await?.ok_or_else(|| type_not_found(key))?;
        self.forget_types();
        Ok(saved)
    }

    /// Deletes a type no notification uses; one in use is 409 `notify.type_in_use`
    /// (deactivate it instead).
    pub async fn delete_type(&self, key: &str) -> ServiceResult<()> {
        let kind = self.notification_type(key).await?;
        if self.store().delete_unused_type(kind.id).await? {
            self.forget_types();
            Ok(())
        } else {
            Err(ServiceError::conflict(
                "notify.type_in_use",
                "Notifications of this type exist; deactivate it instead.",
            ))
        }
    }
}
