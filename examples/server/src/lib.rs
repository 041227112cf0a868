//! The reference server's composition: every module of the SDK and the admin site at
//! `/admin/`, and the wiring between them (a chat message notifies participants who are
//! not connected; payment events notify the payer or payee).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use saas_admin::AdminModule;
use saas_auth::AuthModule;
use saas_chat::{ChatEvents, ChatModule, MessagePosted};
use saas_core::{AppContext, SaasAppBuilder};
use saas_notify::{NotificationRequest, NotifyModule, NotifyService};
use saas_payments::{Order, PaymentEvents, PaymentsModule, Refund};
use saas_toolkit::money::{Currency, Money};

/// Adds every module, wired together, to `builder`.
pub fn compose(builder: SaasAppBuilder) -> SaasAppBuilder {
    builder
        .module(AuthModule::default())
        .module(ChatModule::default().events(Arc::new(NotifyOfflineParticipants)))
        .module(NotifyModule::default())
        .module(PaymentsModule::default().events(NotifyPaymentParties))
        .module(AdminModule)
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

/// Sends the payment notifications: `payment_succeeded` to the payer, `funds_released` to
/// the payee, `refund_issued` to the payer.
pub struct NotifyPaymentParties;

impl NotifyPaymentParties {
    async fn send(ctx: &AppContext, recipient: uuid::Uuid, key: &str, order: &Order, amount_cents: i64) {
        let notify = match NotifyService::get(ctx) {
            Ok(notify) => notify,
            Err(err) => return tracing::warn!(error = %err, "notifications unavailable"),
        };
        let amount = match Currency::parse(&order.currency) {
            Ok(currency) => Money::new(amount_cents, currency).to_string(),
            Err(_) => format!("{amount_cents} {}", order.currency),
        };
        let request = NotificationRequest::new(recipient, key, json!({"amount": amount}))
            .source("payments.order", order.id)
            .data(json!({"order_id": order.id}));
        if let Err(err) = notify.send(request).await {
            tracing::warn!(error = %err, %recipient, key, "payment notification not sent");
        }
    }
}

#[async_trait]
impl PaymentEvents for NotifyPaymentParties {
    async fn payment_succeeded(&self, ctx: &AppContext, order: &Order) {
        Self::send(ctx, order.payer_id, "payment_succeeded", order, order.amount_cents).await;
    }

    async fn funds_released(&self, ctx: &AppContext, order: &Order) {
        if let Some(payee) = order.payee_id {
            let amount = order.amount_cents - order.platform_fee_cents - order.refunded_cents;
            Self::send(ctx, payee, "funds_released", order, amount).await;
        }
    }

    async fn refund_issued(&self, ctx: &AppContext, order: &Order, refund: &Refund) {
        Self::send(ctx, order.payer_id, "refund_issued", order, refund.amount_cents).await;
    }
}
