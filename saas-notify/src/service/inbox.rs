//! The recipient's side: the inbox, read state, push devices and preferences.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use saas_core::{ServiceError, ServiceResult, ValidationErrors};
use saas_toolkit::pagination::TimeCursor;
use saas_toolkit::{Page, PageParams};

use super::NotifyService;
use crate::models::{Channel, Device, Notification};
use crate::store::InboxFilter;

/// Longest device token accepted.
const MAX_TOKEN_LEN: usize = 4096;

/// Per type key, per channel (`in_app`, `push`, `email`, `websocket`): on or off.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Preferences {
    /// `{"new_message": {"in_app": true, "push": false, "email": false, "websocket": true}, …}`.
    #[schema(value_type = Object)]
    pub preferences: BTreeMap<String, BTreeMap<String, bool>>,
}

fn notification_not_found() -> ServiceError {
    ServiceError::not_found("Notification")
}

impl NotifyService {
    /// The caller's notifications, newest first.
    pub async fn inbox(
        &self,
        user: Uuid,
        filter: &InboxFilter,
        page: &PageParams,
    ) -> ServiceResult<Page<Notification>> {
        let limit = page.limit()?;
        let before = page.position::<TimeCursor>()?.map(|p| (p.created_at, p.id));
        let rows = self.store().notifications(user, filter, before, limit + 1).await?;
        Ok(Page::from_rows(rows, limit, |row| TimeCursor { created_at: row.created_at, id: row.id })
            .map(|row| row.to_api()))
    }

    /// One of the caller's notifications.
    pub async fn notification(&self, user: Uuid, id: Uuid) -> ServiceResult<Notification> {
        Ok(self.store().notification(user, id).await?.ok_or_else(notification_not_found)?.to_api())
    }

    /// Marks one notification read (idempotent).
    pub async fn mark_read(&self, user: Uuid, id: Uuid) -> ServiceResult<Notification> {
        if self.store().mark_read(user, id).await? {
            self.publish_unread(user).await?;
        }
        self.notification(user, id).await
    }

    /// Marks all the caller's notifications read; returns how many changed.
    pub async fn mark_all_read(&self, user: Uuid) -> ServiceResult<u64> {
        let marked = self.store().mark_all_read(user).await?;
        if marked > 0 {
            self.publish_unread(user).await?;
        }
        Ok(marked)
    }

    /// The caller's unread count (one primary-key read).
    pub async fn unread_count(&self, user: Uuid) -> ServiceResult<i64> {
        self.store().unread_count(user).await
    }

    async fn publish_unread(&self, user: Uuid) -> ServiceResult<()> {
        let (count, version) = self.store().unread_with_version(user).await?;
        self.publish(user, &[json!({"type": "unread_count", "count": count, "version": version})]).await;
        Ok(())
    }

    /// Registers a push device (`true` when new); registering a known token again returns
    /// the same device, moved to the caller if another account had it.
    pub async fn register_device(
        &self,
        user: Uuid,
        platform: &str,
        token: &str,
        device_id: Option<&str>,
    ) -> ServiceResult<(Device, bool)> {
        let mut errors = ValidationErrors::default();
        if !matches!(platform, "fcm" | "apns") && self.sender(platform).is_none() {
            errors.add("platform", "Must be \"fcm\" or \"apns\".");
        }
        let token = token.trim();
        if token.is_empty() || token.len() > MAX_TOKEN_LEN || token.chars().any(char::is_whitespace) {
            errors.add("token", "Enter a valid device token.");
        }
        let device_id = device_id.map(str::trim).filter(|id| !id.is_empty());
        if device_id.is_some_and(|id| id.len() > 255) {
            errors.add("device_id", "Ensure this field has no more than 255 characters.");
        }
        if !errors.is_empty() {
            return Err(errors.into_error());
        }
        self.store().register_device(user, platform, token, device_id).await
    }

    /// The caller's devices, oldest first.
    pub async fn devices(&self, user: Uuid, page: &PageParams) -> ServiceResult<Page<Device>> {
        let limit = page.limit()?;
        let after = page.position::<TimeCursor>()?.map(|p| (p.created_at, p.id));
        let rows = self.store().devices(user, after, limit + 1).await?;
        Ok(Page::from_rows(rows, limit, |row| TimeCursor { created_at: row.created_at, id: row.id }))
    }

    /// Removes one of the caller's devices.
    pub async fn remove_device(&self, user: Uuid, id: Uuid) -> ServiceResult<()> {
        if self.store().delete_device(id, Some(user)).await? { Ok(()) } else { Err(ServiceError::not_found("Device")) }
    }

    /// The caller's effective preferences for every active type: a channel the type does
    /// not use is off; one the caller never set is on.
    pub async fn preferences(&self, user: Uuid) -> ServiceResult<Preferences> {
        let set: BTreeMap<(String, String), bool> =
            self.store().preferences(user).await?.into_iter().map(|(key, channel, on)| ((key, channel), on)).collect();
        let mut preferences = BTreeMap::new();
        for kind in self.store().types().await?.into_iter().filter(|kind| kind.is_active) {
            let channels = Channel::ALL
                .into_iter()
                .map(|channel| {
                    let chosen = set.get(&(kind.key.clone(), channel.as_str().to_owned())).copied().unwrap_or(true);
                    (channel.as_str().to_owned(), kind.supports(channel) && chosen)
                })
                .collect();
            preferences.insert(kind.key, channels);
        }
        Ok(Preferences { preferences })
    }

    /// Switches channels on or off per type; unknown types or channels, and channels a
    /// type does not use, are refused with nothing saved.
    pub async fn set_preferences(&self, user: Uuid, update: Preferences) -> ServiceResult<Preferences> {
        let types = self.store().types().await?;
        let mut errors = ValidationErrors::default();
        let mut settings = Vec::new();
        for (key, channels) in update.preferences {
            let Some(kind) = types.iter().find(|kind| kind.key == key) else {
                errors.add(&key, "Unknown notification type.");
                continue;
            };
            for (name, on) in channels {
                match Channel::parse(&name) {
                    None => errors.add(&key, format!("Unknown channel \"{name}\".")),
                    Some(channel) if on && !kind.supports(channel) => {
                        errors.add(&key, format!("This type is not sent by {name}."))
                    }
                    Some(channel) => settings.push((key.clone(), channel.as_str(), on)),
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors.into_error());
        }
        self.store().set_preferences(user, &settings).await?;
        self.preferences(user).await
    }
}
