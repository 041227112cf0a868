//! The reference server's composition: every module of the SDK, and the wiring between
//! them (a chat message notifies participants who are not connected).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use saas_auth::AuthModule;
use saas_chat::{ChatEvents, ChatModule, MessagePosted};
use saas_core::{AppContext, SaasAppBuilder};
use saas_notify::{NotificationRequest, NotifyModule, NotifyService};

/// Adds every module, wired together, to `builder`.
pub fn compose(builder: SaasAppBuilder) -> SaasAppBuilder {
    builder
        .module(AuthModule::default())
        .module(ChatModule::default().events(Arc::new(NotifyOfflineParticipants)))
        .module(NotifyModule::default())
}

/// Sends `new_message` notifications to the participants of a conversation who have no
/// socket open on it.
pub struct NotifyOfflineParticipants;

/// Characters of a message shown in its notification.
const PREVIEW_CHARS: usize = 100;

#[async_trait]
impl ChatEvents for NotifyOfflineParticipants {
    async fn message_posted(&self, ctx: &AppContext, event: MessagePosted) {
        let notify = match NotifyService::get(ctx) {
            Ok(notify) => notify,
            Err(err) => return tracing::warn!(error = %err, "notifications unavailable"),
        };
        let mut preview: String = event.message.content.chars().take(PREVIEW_CHARS).collect();
        if event.message.content.chars().count() > PREVIEW_CHARS {
            preview.push('…');
        }
        for recipient in event.offline_recipients {
            let mut request = NotificationRequest::new(
                recipient,
                "new_message",
                json!({
                    "sender_name": event.sender_name,
                    "preview": preview,
                    "conversation_title": event.conversation_title,
                }),
            )
            .source("chat.message", event.message.id)
            .data(json!({"conversation_id": event.conversation_id, "message_id": event.message.id}));
            if let Some(sender) = event.message.sender_id {
                request = request.actor(sender);
            }
            if let Err(err) = notify.send(request).await {
                tracing::warn!(error = %err, %recipient, "new message notification not sent");
            }
        }
    }
}
