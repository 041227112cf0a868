//! The notification logic: render a type's templates, store the inbox entry, fan out to the
//! channels the recipient allows. No HTTP types here.

mod delivery;
mod inbox;
mod types;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use saas_core::error::ErrorKind;
use saas_core::{AppContext, ServiceError, ServiceResult};
use saas_toolkit::templates::Templates;

use crate::models::{Channel, Notification, NotificationRow, NotificationType};
use crate::push::PushSender;
use crate::store::{Channels, NewNotification, NotifyStore};

pub use delivery::DELIVER_JOB;
pub use inbox::Preferences;
pub use types::{NewType, TypeUpdate};

/// One notification to send: recipient, type, template context, and optional extras.
#[derive(Debug, Clone)]
pub struct NotificationRequest {
    /// Recipient.
    pub recipient: Uuid,
    /// Type key (`new_message`).
    pub type_key: String,
    /// Variables of the type's templates.
    pub context: Value,
    /// Who caused it.
    pub actor_id: Option<Uuid>,
    /// The object it is about: (kind, id).
    pub source: Option<(String, String)>,
    /// A title replacing the rendered one.
    pub title: Option<String>,
    /// A body replacing the rendered one.
    pub body: Option<String>,
    /// Data for clients (merged into push payloads).
    pub data: Value,
}

impl NotificationRequest {
    /// A request for `recipient` of type `type_key` rendered with `context`.
    pub fn new(recipient: Uuid, type_key: impl Into<String>, context: impl Serialize) -> Self {
        Self {
            recipient,
            type_key: type_key.into(),
            context: serde_json::to_value(context).unwrap_or(Value::Null),
            actor_id: None,
            source: None,
            title: None,
            body: None,
            data: json!({}),
        }
    }

    /// Names who caused it.
    pub fn actor(mut self, actor_id: Uuid) -> Self {
        self.actor_id = Some(actor_id);
        self
    }

    /// Names the object it is about.
    pub fn source(mut self, kind: impl Into<String>, id: impl ToString) -> Self {
        self.source = Some((kind.into(), id.to_string()));
        self
    }

    /// Replaces the rendered title and body.
    pub fn text(mut self, title: impl Into<String>, body: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self.body = Some(body.into());
        self
    }

    /// Sets the data clients get with it.
    pub fn data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }
}

/// The notification service; cheap to clone. Get it with [`NotifyService::get`].
#[derive(Clone)]
pub struct NotifyService {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: AppContext,
    store: NotifyStore,
    senders: HashMap<&'static str, Arc<dyn PushSender>>,
    types: Mutex<HashMap<String, (NotificationType, Instant)>>,
}

/// How long a node trusts its cached copy of a notification type.
pub const TYPE_CACHE_TTL: Duration = Duration::from_secs(10);

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The pub/sub topic of a user's notification sockets.
pub(crate) fn topic(user_id: Uuid) -> String {
    format!("notify:{user_id}")
}

fn type_not_found(key: &str) -> ServiceError {
    ServiceError::new(ErrorKind::NotFound, "notify.type_not_found", format!("No notification type \"{key}\"."))
}

impl NotifyService {
    /// A service on the app's database with these push senders (one per platform; a later
    /// one replaces an earlier one of the same platform).
    pub fn new(ctx: &AppContext, senders: Vec<Arc<dyn PushSender>>) -> Self {
        let senders = senders.into_iter().map(|sender| (sender.platform(), sender)).collect();
        let store = NotifyStore::new(ctx.db().clone());
        Self { inner: Arc::new(Inner { ctx: ctx.clone(), store, senders, types: Mutex::new(HashMap::new()) }) }
    }

    /// The service installed in the app (by `NotifyModule`), or a new one with the push
    /// senders the configuration names.
    pub fn get(ctx: &AppContext) -> ServiceResult<Self> {
        if let Some(service) = ctx.get::<NotifyService>() {
            return Ok(service);
        }
        let service = NotifyService::new(ctx, crate::push::configured_senders(ctx.config())?);
        ctx.insert(service.clone());
        Ok(service)
    }

    /// The tables.
    pub fn store(&self) -> &NotifyStore {
        &self.inner.store
    }

    fn ctx(&self) -> &AppContext {
        &self.inner.ctx
    }

    fn sender(&self, platform: &str) -> Option<Arc<dyn PushSender>> {
        self.inner.senders.get(platform).cloned()
    }

    /// Sends a notification of type `type_key` to `recipient`, rendered with `context`.
    pub async fn notify(
        &self,
        recipient: Uuid,
        type_key: &str,
        context: impl Serialize,
    ) -> ServiceResult<Option<Notification>> {
        self.send(NotificationRequest::new(recipient, type_key, context)).await
    }

    /// Renders, stores and fans out one notification: the inbox entry (unless the recipient
    /// switched in-app off for the type), the sockets on every node, and a job per email and
    /// push device. Returns the inbox entry.
    pub async fn send(&self, request: NotificationRequest) -> ServiceResult<Option<Notification>> {
        let kind = self.active_type(&request.type_key).await?;
        let (title, body) = render(&kind, &request)?;
        let enabled = self.enabled_channels(request.recipient, &kind).await?;
        let in_app = enabled.contains(&Channel::InApp);
        let channels = Channels {
            in_app,
            websocket: in_app && enabled.contains(&Channel::Websocket),
            email: enabled.contains(&Channel::Email),
            push: enabled.contains(&Channel::Push),
        };
        let row = NotificationRow {
            id: Uuid::now_v7(),
            recipient_id: request.recipient,
            type_key: kind.key.clone(),
            title,
            body,
            data: sqlx::types::Json(request.data.clone()),
            actor_id: request.actor_id,
            source_type: request.source.as_ref().map(|(kind, _)| kind.clone()),
            source_id: request.source.as_ref().map(|(_, id)| id.clone()),
            is_read: false,
            read_at: None,
            created_at: chrono::Utc::now(),
        };
        let stored = self.store().store(&NewNotification { row: &row, type_id: kind.id, channels }).await?;
        let notification = in_app.then(|| row.to_api());
        if let (Some(notification), Some((unread, version))) = (&notification, stored.unread) {
            let count = json!({"type": "unread_count", "count": unread, "version": version});
            let frames = if channels.websocket {
                vec![json!({"type": "notification.new", "notification": notification}), count]
            } else {
                vec![count]
            };
            self.publish(request.recipient, &frames).await;
        }
        for delivery_id in stored.pending {
            // Stored already: a queue hiccup leaves the delivery pending, and the retry round
            // picks it up; the caller is not told of a failure that was not one.
            if let Err(err) = self.ctx().jobs().enqueue(DELIVER_JOB, &delivery::DeliverJob { delivery_id }).await {
                tracing::warn!(error = %err, %delivery_id, "delivery not queued; the retry round will");
            }
        }
        Ok(notification)
    }

    /// An active type by key, from a short-lived cache (a change made on another node is
    /// seen within [`TYPE_CACHE_TTL`]).
    async fn active_type(&self, key: &str) -> ServiceResult<NotificationType> {
        let cached = lock(&self.inner.types).get(key).filter(|(_, at)| at.elapsed() < TYPE_CACHE_TTL).cloned();
        let kind = match cached {
            Some((kind, _)) => kind,
            None => {
                let kind = self.store().type_by_key(key).await?.ok_or_else(|| type_not_found(key))?;
                lock(&self.inner.types).insert(key.to_owned(), (kind.clone(), Instant::now()));
                kind
            }
        };
        if !kind.is_active {
            return Err(ServiceError::bad_request(
                "notify.type_inactive",
                format!("The notification type \"{}\" is inactive.", kind.key),
            ));
        }
        Ok(kind)
    }

    /// Forgets cached types (after a change on this node).
    fn forget_types(&self) {
        lock(&self.inner.types).clear();
    }

    /// The channels the type supports and the recipient has not switched off.
    async fn enabled_channels(&self, recipient: Uuid, kind: &NotificationType) -> ServiceResult<Vec<Channel>> {
        let settings: HashMap<String, bool> =
            self.store().preferences_for(recipient, &kind.key).await?.into_iter().collect();
        Ok(Channel::ALL
            .into_iter()
            .filter(|channel| kind.supports(*channel) && settings.get(channel.as_str()).copied().unwrap_or(true))
            .collect())
    }

    /// Sends frames to the user's notification sockets on every node, in one message (one
    /// JSON text per line; sockets send each as a frame).
    async fn publish(&self, user: Uuid, frames: &[Value]) {
        let lines: Vec<String> = frames.iter().map(Value::to_string).collect();
        let payload = bytes::Bytes::from(lines.join("\n"));
        if let Err(err) = self.ctx().pubsub().publish(&topic(user), payload).await {
            tracing::warn!(error = %err, "notification frame not published");
        }
    }
}

/// The title and body: the request's own, else the type's templates rendered with the
/// context; a variable missing from the context is an error, never a blank.
fn render(kind: &NotificationType, request: &NotificationRequest) -> ServiceResult<(String, String)> {
    let templates = Templates::new();
    let context = match &request.context {
        Value::Object(map) => map.clone(),
        Value::Null => serde_json::Map::new(),
        _ => return Err(ServiceError::invalid_field("context", "The context must be an object.")),
    };
    let mut missing = Vec::new();
    for (text, template) in [(&request.title, &kind.title_template), (&request.body, &kind.body_template)] {
        if text.is_none() {
            for variable in templates.variables(template)? {
                if !context.contains_key(&variable) && !missing.contains(&variable) {
                    missing.push(variable);
                }
            }
        }
    }
    if !missing.is_empty() {
        return Err(ServiceError::bad_request(
            "notify.missing_variable",
            format!("The context lacks {} of the \"{}\" templates.", missing.join(", "), kind.key),
        )
        .with_detail("missing", missing));
    }
    let title = match &request.title {
        Some(title) => title.clone(),
        None => templates.render_str(&kind.title_template, &context)?,
    };
    let body = match &request.body {
        Some(body) => body.clone(),
        None => templates.render_str(&kind.body_template, &context)?,
    };
    Ok((title, body))
}
