//! Rows of the notification tables, their enums, and the JSON shapes of the API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

/// A way a notification reaches its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The inbox (`GET /api/v1/notifications/`).
    InApp,
    /// Mobile push (FCM, APNs).
    Push,
    /// Email through the app's mailer.
    Email,
    /// `ws/notifications/` sockets, on every node.
    Websocket,
}

impl Channel {
    /// Every channel, in the order preferences list them.
    pub const ALL: [Channel; 4] = [Channel::InApp, Channel::Push, Channel::Email, Channel::Websocket];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InApp => "in_app",
            Self::Push => "push",
            Self::Email => "email",
            Self::Websocket => "websocket",
        }
    }

    /// The channel named `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|channel| channel.as_str() == text)
    }
}

/// What a delivery has come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its job.
    Pending,
    /// Taken by a worker, being sent (claimed once, so two jobs never send it twice).
    Sending,
    /// Accepted by the provider (or written to the socket topic).
    Sent,
    /// Failed; retried while attempts remain.
    Failed,
    /// Will not be retried (invalid token, recipient gone).
    Abandoned,
}

impl DeliveryStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Abandoned => "abandoned",
        }
    }
}

/// A kind of notification: its templates and the channels it may use.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct NotificationType {
    /// Integer id.
    pub id: i64,
    /// Unique key (`new_message`).
    pub key: String,
    /// Name shown to staff and in preferences.
    pub display_name: String,
    /// minijinja template of the title.
    pub title_template: String,
    /// minijinja template of the body.
    pub body_template: String,
    /// Whether it may be pushed to devices.
    pub push_enabled: bool,
    /// Whether it may be emailed.
    pub email_enabled: bool,
    /// Whether it is sent to open sockets.
    pub websocket_enabled: bool,
    /// Inactive types cannot be sent.
    pub is_active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl NotificationType {
    /// Whether the type may use `channel` (in-app always).
    pub fn supports(&self, channel: Channel) -> bool {
        match channel {
            Channel::InApp => true,
            Channel::Push => self.push_enabled,
            Channel::Email => self.email_enabled,
            Channel::Websocket => self.websocket_enabled,
        }
    }
}

/// A row of `notify_notifications` with its type's key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NotificationRow {
    /// Id.
    pub id: Uuid,
    /// Recipient.
    pub recipient_id: Uuid,
    /// Type key.
    pub type_key: String,
    /// Rendered title.
    pub title: String,
    /// Rendered body.
    pub body: String,
    /// Data for clients (ids to open, etc.).
    pub data: Json<Value>,
    /// Who caused it.
    pub actor_id: Option<Uuid>,
    /// Kind of the object it is about.
    pub source_type: Option<String>,
    /// Id of the object it is about.
    pub source_id: Option<String>,
    /// Read.
    pub is_read: bool,
    /// When it was read.
    pub read_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl NotificationRow {
    /// The notification as the API shows it.
    pub fn to_api(&self) -> Notification {
        Notification {
            id: self.id,
            type_key: self.type_key.clone(),
            title: self.title.clone(),
            body: self.body.clone(),
            data: self.data.0.clone(),
            actor_id: self.actor_id,
            source_type: self.source_type.clone(),
            source_id: self.source_id.clone(),
            is_read: self.is_read,
            read_at: self.read_at,
            created_at: self.created_at,
        }
    }
}

/// A notification in a user's inbox.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    /// Id.
    pub id: Uuid,
    /// Type key.
    pub type_key: String,
    /// Rendered title.
    pub title: String,
    /// Rendered body.
    pub body: String,
    /// Data for clients.
    #[schema(value_type = Object)]
    pub data: Value,
    /// Who caused it.
    pub actor_id: Option<Uuid>,
    /// Kind of the object it is about.
    pub source_type: Option<String>,
    /// Id of the object it is about.
    pub source_id: Option<String>,
    /// Read.
    pub is_read: bool,
    /// When it was read.
    pub read_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A row of `notify_deliveries`: one channel's attempt at one notification.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    /// Id.
    pub id: Uuid,
    /// The inbox entry, if one was stored.
    pub notification_id: Option<Uuid>,
    /// Recipient.
    pub recipient_id: Uuid,
    /// Type key.
    pub type_key: String,
    /// `push`, `email` or `websocket`.
    pub channel: String,
    /// The device of a push.
    pub device_id: Option<Uuid>,
    /// Title sent.
    pub title: String,
    /// Body sent.
    pub body: String,
    /// Data sent.
    pub data: Json<Value>,
    /// `pending`, `sent`, `failed`, `abandoned`.
    pub status: String,
    /// The provider's id of the message.
    pub provider_message_id: Option<String>,
    /// Attempts so far.
    pub attempts: i32,
    /// The last failure.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A push device of a user.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Device {
    /// Id.
    pub id: Uuid,
    /// Owner.
    #[serde(skip_serializing)]
    pub user_id: Uuid,
    /// `fcm` or `apns`.
    pub platform: String,
    /// The provider's device token.
    pub token: String,
    /// The app's own id of the device.
    pub device_id: Option<String>,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Last registration.
    pub last_seen_at: DateTime<Utc>,
}
