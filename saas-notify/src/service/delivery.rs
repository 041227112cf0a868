//! Delivery of one notification over one slow channel (email, push), run by a job: every
//! attempt is recorded; a failing channel never holds back another, since each delivery
//! is a job of its own.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use saas_core::jobs::EnqueueOptions;
use saas_core::{ServiceError, ServiceResult};
use saas_toolkit::Email;

use super::NotifyService;
use crate::models::{DeliveryRow, DeliveryStatus};
use crate::push::{PushMessage, PushOutcome};

/// The job that delivers one delivery row.
pub const DELIVER_JOB: &str = "notify.deliver";

/// How long an attempt may stay `sending` before its sender is taken to have stopped (a
/// crashed worker) and the delivery may be claimed again.
const SENDING_TIMEOUT: chrono::Duration = chrono::Duration::minutes(5);

/// Payload of [`DELIVER_JOB`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliverJob {
    /// The delivery.
    pub delivery_id: Uuid,
}

impl NotifyService {
    /// Attempts a delivery. `Err` means "try again later" (the job retries with backoff);
    /// a delivery that can never succeed (invalid token, recipient gone) is abandoned.
    pub async fn deliver(&self, delivery_id: Uuid) -> ServiceResult<()> {
        // Claimed first: a retry racing the delivery's own job (or the retry round) finds it
        // taken and sends nothing.
        let stale = Utc::now() - SENDING_TIMEOUT;
        let Some(delivery) = self.store().claim_delivery(delivery_id, stale).await? else { return Ok(()) };
        let result = match delivery.channel.as_str() {
            "email" => self.deliver_email(&delivery).await,
            "push" => self.deliver_push(&delivery).await,
            other => Err(Attempt::Abandon(format!("no delivery for channel {other}"))),
        };
        match result {
            Ok(provider_id) => {
                self.store().record_attempt(delivery.id, DeliveryStatus::Sent, provider_id.as_deref(), None).await
            }
            Err(Attempt::Abandon(reason)) => {
                self.store().record_attempt(delivery.id, DeliveryStatus::Abandoned, None, Some(&reason)).await
            }
            Err(Attempt::Retry(err)) => {
                self.store().record_attempt(delivery.id, DeliveryStatus::Failed, None, Some(err.message())).await?;
                Err(err)
            }
        }
    }

    async fn deliver_email(&self, delivery: &DeliveryRow) -> Result<Option<String>, Attempt> {
        let directory = saas_auth::directory(self.ctx()).map_err(Attempt::Retry)?;
        let user = directory.user(delivery.recipient_id).await.map_err(Attempt::Retry)?;
        let Some(user) = user.filter(|user| user.is_active) else {
            return Err(Attempt::Abandon("recipient inactive or gone".into()));
        };
        let mailer = saas_toolkit::mailer(self.ctx()).map_err(Attempt::Retry)?;
        mailer.send(&Email::text(user.email, &delivery.title, &delivery.body)).await.map_err(Attempt::Retry)?;
        Ok(None)
    }

    async fn deliver_push(&self, delivery: &DeliveryRow) -> Result<Option<String>, Attempt> {
        let device_id = delivery.device_id.ok_or_else(|| Attempt::Abandon("no device".into()))?;
        let Some(device) = self.store().device(device_id).await.map_err(Attempt::Retry)? else {
            return Err(Attempt::Abandon("device removed".into()));
        };
        // A token registered again by another account moved to it: this user's pushes stop there.
        if device.user_id != delivery.recipient_id {
            return Err(Attempt::Abandon("device moved to another account".into()));
        }
        let Some(sender) = self.sender(&device.platform) else {
            return Err(Attempt::Abandon(format!("no push sender configured for {}", device.platform)));
        };
        let mut data = match &delivery.data.0 {
            serde_json::Value::Object(map) => map.clone(),
            _ => serde_json::Map::new(),
        };
        data.insert("type_key".into(), delivery.type_key.clone().into());
        if let Some(id) = delivery.notification_id {
            data.insert("notification_id".into(), id.to_string().into());
        }
        let message = PushMessage { title: delivery.title.clone(), body: delivery.body.clone(), data };
        match sender.send(&device.token, &message).await.map_err(Attempt::Retry)? {
            PushOutcome::Sent { provider_message_id } => Ok(provider_message_id),
            PushOutcome::InvalidToken { reason } => {
                self.store().delete_device(device.id, None).await.map_err(Attempt::Retry)?;
                tracing::info!(device = %device.id, %reason, "push token rejected; device removed");
                Err(Attempt::Abandon(format!("invalid token: {reason}")))
            }
        }
    }

    /// Queues again the failed deliveries last tried over `age` ago with fewer than
    /// `max_attempts` attempts; returns how many.
    pub async fn retry_failed(&self, age: chrono::Duration, max_attempts: i32) -> ServiceResult<usize> {
        let ids = self.store().retryable(Utc::now() - age, max_attempts, 1000).await?;
        for id in &ids {
            self.ctx().jobs().enqueue(DELIVER_JOB, &DeliverJob { delivery_id: *id }).await?;
        }
        Ok(ids.len())
    }

    /// Queues one failed delivery for another attempt now, as the retry round does (staff
    /// retry from the admin). A delivery that has not failed is 400
    /// `notify.delivery_not_failed`; asking again before the attempt runs queues nothing more.
    pub async fn retry_delivery(&self, delivery_id: Uuid) -> ServiceResult<()> {
        let delivery = self.store().delivery(delivery_id).await?.ok_or_else(|| ServiceError::not_found("Delivery"))?;
        if delivery.status != DeliveryStatus::Failed.as_str() {
            return Err(ServiceError::bad_request(
                "notify.delivery_not_failed",
                format!("Only a failed delivery is retried; this one is {}.", delivery.status),
            ));
        }
        let options =
            EnqueueOptions { delay: None, unique_key: Some(format!("retry:{delivery_id}:{}", delivery.attempts)) };
        self.ctx().jobs().enqueue_with(DELIVER_JOB, &DeliverJob { delivery_id }, options).await
    }

    /// Deletes read notifications read over `age` ago; returns how many.
    pub async fn purge_read(&self, age: chrono::Duration) -> ServiceResult<u64> {
        self.store().purge_read(Utc::now() - age).await
    }
}

/// How an attempt failed.
enum Attempt {
    /// Worth retrying.
    Retry(ServiceError),
    /// Never going to work.
    Abandon(String),
}
