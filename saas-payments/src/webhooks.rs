//! The Stripe webhook receiver: the `Stripe-Signature` header is verified (HMAC-SHA256 of
//! `{timestamp}.{body}`, five minutes' tolerance) before the body is parsed; each event is
//! stored once by its id (a duplicate is a no-op), then processed: a first attempt at once,
//! and on failure a job with retries (the retry cron catches anything left pending).
//! Processing applies the event to the objects it names; an event arriving out of order
//! never moves an object backwards (the state machines refuse it and it changes nothing).

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;
use uuid::Uuid;

use saas_core::{ServiceError, ServiceResult, ValidationErrors, with_pool};

use crate::models::WebhookEvent;
use crate::service::{Actor, PROCESS_WEBHOOK_JOB, PaymentsService};

/// How far a signature's timestamp may be from now.
pub const TOLERANCE_SECONDS: i64 = 300;
/// Processing attempts after which a failed event is left to staff.
pub const MAX_ATTEMPTS: i32 = 10;

/// The answer to Stripe.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Received {
    /// Always true.
    pub received: bool,
    /// The event was received before; nothing was done.
    pub duplicate: bool,
}

fn invalid_signature(message: &str) -> ServiceError {
    ServiceError::bad_request("payments.invalid_signature", message.to_owned())
}

/// Checks a `Stripe-Signature` header (`t=…,v1=…[,v1=…]`) for `payload` at `now` (unix
/// seconds): some `v1` must be the HMAC-SHA256 of `{t}.{payload}` under `secret`, and `t`
/// within [`TOLERANCE_SECONDS`] of `now`.
pub fn verify_signature(secret: &str, header: &str, payload: &[u8], now: i64) -> ServiceResult<()> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| invalid_signature("The Stripe-Signature header has no timestamp."))?;
    if signatures.is_empty() {
        return Err(invalid_signature("The Stripe-Signature header has no v1 signature."));
    }
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(invalid_signature("The signature's timestamp is outside the tolerance."));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(ServiceError::internal)?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    // `verify_slice` compares in constant time.
    let matches = signatures.iter().any(|signature| mac.clone().verify_slice(signature).is_ok());
    if matches { Ok(()) } else { Err(invalid_signature("No signature matches the payload.")) }
}

impl PaymentsService {
    /// Receives a webhook: verifies, stores once, queues its processing.
    pub async fn receive_webhook(&self, signature: Option<&str>, payload: &[u8]) -> ServiceResult<Received> {
        let Some(secret) = self.webhook_secret() else {
            tracing::warn!("a Stripe webhook arrived but STRIPE_WEBHOOK_SECRET is not set; it was refused");
            return Err(invalid_signature("Webhooks are not configured."));
        };
        let header = signature.ok_or_else(|| invalid_signature("The Stripe-Signature header is missing."))?;
        verify_signature(secret, header, payload, chrono::Utc::now().timestamp())?;
        let event: Value = serde_json::from_slice(payload)
            .map_err(|err| ServiceError::bad_request("validation.failed", format!("The body is not JSON: {err}")))?;
        let mut errors = ValidationErrors::default();
        let id = event.get("id").and_then(Value::as_str).filter(|id| !id.is_empty() && id.len() <= 255);
        let kind = event.get("type").and_then(Value::as_str).filter(|kind| !kind.is_empty() && kind.len() <= 255);
        if id.is_none() {
            errors.add("id", "This field is required.");
        }
        if kind.is_none() {
            errors.add("type", "This field is required.");
        }
        let (Some(id), Some(kind)) = (id, kind) else {
            return Err(errors.into_error());
        };
        let created = event.get("created").and_then(Value::as_i64).unwrap_or(0);
        let text = std::str::from_utf8(payload)
            .map_err(|_| ServiceError::bad_request("validation.failed", "The body is not UTF-8."))?;
        let inserted = with_pool!(self.ctx().db(), pool => sqlx::query(
            "INSERT INTO payment_webhook_events (id, event_type, payload, state, stripe_created, received_at) \
             VALUES ($1, $2, $3, 'pending', $4, $5) ON CONFLICT (id) DO NOTHING")
            .bind(id).bind(kind).bind(text).bind(created).bind(chrono::Utc::now())
            .execute(pool).await.map(|done| done.rows_affected()))?
            == 1;
        if inserted {
            // The first attempt runs now, in a task of its own (a client hanging up cannot
            // cut it short); a failure goes to the job, which retries with backoff, and an
            // event left pending by a crash is picked up by the retry cron.
            let service = self.clone();
            let event_id = id.to_owned();
            let first = tokio::spawn(async move { service.process_webhook(&event_id).await }).await;
            if !matches!(first, Ok(Ok(()))) {
                self.enqueue(PROCESS_WEBHOOK_JOB, serde_json::json!({"event_id": id})).await;
            }
        }
        Ok(Received { received: true, duplicate: !inserted })
    }

    /// A stored event.
    pub async fn webhook_event(&self, id: &str) -> ServiceResult<Option<WebhookEvent>> {
        Ok(with_pool!(self.ctx().db(), pool => sqlx::query_as::<_, WebhookEvent>(
            "SELECT id, event_type, state, attempts, last_error, received_at, processed_at \
             FROM payment_webhook_events WHERE id = $1")
            .bind(id).fetch_optional(pool).await)?)
    }

    /// Processes a stored event once: applied, then `processed` (or `ignored` when it
    /// concerns nothing of ours); a failure is recorded (`failed`) and returned, so the job
    /// retries it.
    pub async fn process_webhook(&self, id: &str) -> ServiceResult<()> {
        let row: Option<(String, String, String)> = with_pool!(self.ctx().db(), pool => sqlx::query_as(
            "SELECT event_type, payload, state FROM payment_webhook_events WHERE id = $1")
            .bind(id).fetch_optional(pool).await)?;
        let Some((kind, payload, state)) = row else {
            return Ok(());
        };
        if state == "processed" || state == "ignored" {
            return Ok(());
        }
        let outcome = match serde_json::from_str::<Value>(&payload) {
            Ok(event) => self.apply_event(id, &kind, &event).await,
            Err(err) => Err(ServiceError::internal(format!("stored event is not JSON: {err}"))),
        };
        let (state, error) = match &outcome {
            Ok(true) => ("processed", None),
            Ok(false) => ("ignored", None),
            Err(err) => ("failed", Some(err.to_string())),
        };
        with_pool!(self.ctx().db(), pool => sqlx::query(
            "UPDATE payment_webhook_events SET state = $2, attempts = attempts + 1, last_error = $3, \
             processed_at = CASE WHEN $2 = 'failed' THEN processed_at ELSE $4 END WHERE id = $1")
            .bind(id).bind(state).bind(error).bind(chrono::Utc::now())
            .execute(pool).await.map(|_| ()))?;
        outcome.map(|_| ())
    }

    /// Staff processes a failed or stuck event again, through the same code as the job (a
    /// failure is recorded and returned); an event already processed or ignored is refused
    /// with 409 `payments.webhook_already_processed` and left as it is.
    pub async fn retry_webhook_event(&self, id: &str) -> ServiceResult<WebhookEvent> {
        let event = self.webhook_event(id).await?.ok_or_else(|| ServiceError::not_found("webhook event"))?;
        if event.state == "processed" || event.state == "ignored" {
            return Err(ServiceError::conflict(
                "payments.webhook_already_processed",
                format!("Event {id} was already {}; it is not processed again.", event.state),
            )
            .with_detail("state", event.state));
        }
        self.process_webhook(id).await?;
        self.webhook_event(id).await?.ok_or_else(|| ServiceError::not_found("webhook event"))
    }

    /// Applies one event; `false` when it concerns nothing of ours.
    async fn apply_event(&self, id: &str, kind: &str, event: &Value) -> ServiceResult<bool> {
        let object = &event["data"]["object"];
        let actor = Actor::system(format!("stripe:{id}"));
        let text = |field: &str| object.get(field).and_then(Value::as_str).map(str::to_owned);
        let payout_of =
            |object: &Value| object["metadata"]["payout_id"].as_str().and_then(|id| Uuid::parse_str(id).ok());
        let applied = match kind {
            "payment_intent.succeeded" => match text("id") {
                Some(intent) => self.payment_succeeded(&intent, &actor).await?.is_some(),
                None => false,
            },
            "payment_intent.payment_failed" => match text("id") {
                Some(intent) => self.payment_failed(&intent, &actor).await?.is_some(),
                None => false,
            },
            "payment_intent.canceled" => match text("id") {
                Some(intent) => self.payment_canceled(&intent, &actor).await?.is_some(),
                None => false,
            },
            "charge.refunded" => match text("payment_intent") {
                Some(intent) => {
                    let refunded = object["amount_refunded"].as_i64().unwrap_or(0);
                    self.charge_refunded(&intent, refunded, &actor).await?.is_some()
                }
                None => false,
            },
            "charge.dispute.created" => {
                let intent = text("payment_intent");
                let order = match intent {
                    Some(intent) => self.order_by_payment_intent(&intent).await?,
                    None => None,
                };
                match order {
                    Some(order) => {
                        let detail = format!(
                            "Dispute {} opened: {}",
                            text("id").unwrap_or_default(),
                            text("reason").unwrap_or_default()
                        );
                        self.flag("order", &order.id.to_string(), "dispute", &detail).await?;
                        true
                    }
                    None => false,
                }
            }
            "transfer.created" | "transfer.paid" | "payout.paid" => {
                match self.payout_of_object(object, payout_of(object)).await? {
                    Some(payout) => {
                        self.payout_paid(payout, &actor).await?;
                        true
                    }
                    None => false,
                }
            }
            "transfer.failed" | "transfer.reversed" | "payout.failed" => {
                match self.payout_of_object(object, payout_of(object)).await? {
                    Some(payout) => {
                        let reason = text("failure_message").unwrap_or_else(|| kind.to_owned());
                        self.payout_failed(payout, &reason, &actor).await?;
                        true
                    }
                    None => false,
                }
            }
            "account.updated" => self.account_updated(object, &actor).await?.is_some(),
            "invoice.paid" => self.subscription_invoice_paid(object, &actor).await?.is_some(),
            "invoice.payment_failed" => self.subscription_invoice_failed(object, &actor).await?.is_some(),
            "customer.subscription.created" | "customer.subscription.updated" | "customer.subscription.deleted" => {
                let created = event["created"].as_i64().unwrap_or(0);
                let deleted = kind == "customer.subscription.deleted";
                self.subscription_event(object, created, deleted, &actor).await?.is_some()
            }
            _ => false,
        };
        Ok(applied)
    }

    async fn payout_of_object(&self, object: &Value, from_metadata: Option<Uuid>) -> ServiceResult<Option<Uuid>> {
        if let Some(id) = from_metadata {
            return Ok(Some(id));
        }
        match object.get("id").and_then(Value::as_str) {
            Some(transfer) => Ok(self.payout_by_transfer(transfer).await?.map(|payout| payout.id)),
            None => Ok(None),
        }
    }

    /// Queues stuck events again: pending for over five minutes, or failed with attempts
    /// left; returns how many.
    pub async fn retry_webhooks(&self) -> ServiceResult<usize> {
        let stale = chrono::Utc::now() - chrono::Duration::minutes(5);
        let ids: Vec<String> = with_pool!(self.ctx().db(), pool => sqlx::query_scalar(
            "SELECT id FROM payment_webhook_events WHERE (state = 'pending' AND received_at < $1) \
             OR (state = 'failed' AND attempts < $2) ORDER BY received_at LIMIT 1000")
            .bind(stale).bind(MAX_ATTEMPTS).fetch_all(pool).await)?;
        for id in &ids {
            self.enqueue(PROCESS_WEBHOOK_JOB, serde_json::json!({"event_id": id})).await;
        }
        Ok(ids.len())
    }
}

impl PaymentsService {
    /// The webhook figures of a `/metrics` scrape: how long the oldest event not yet
    /// processed has waited (0 when none waits), and how many failed for now.
    pub async fn webhook_metrics(&self) -> Vec<saas_core::metrics::Sample> {
        let db = self.ctx().db();
        let oldest: Result<Option<DateTime<Utc>>, sqlx::Error> = with_pool!(db, pool => sqlx::query_scalar(
            "SELECT MIN(received_at) FROM payment_webhook_events WHERE state IN ('pending', 'failed')")
            .fetch_one(pool).await);
        let failed: Result<i64, sqlx::Error> = with_pool!(db, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM payment_webhook_events WHERE state = 'failed' LIMIT 10001) AS f")
            .fetch_one(pool).await);
        let (Ok(oldest), Ok(failed)) = (oldest, failed) else {
            tracing::warn!("webhook figures missing from the scrape");
            return Vec::new();
        };
        let lag = oldest.map_or(0.0, |at| (Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0);
        vec![
            saas_core::metrics::Sample {
                name: "saas_payments_webhook_lag_seconds",
                help: "Age of the oldest Stripe event received but not processed yet",
                value: lag,
            },
            saas_core::metrics::Sample {
                name: "saas_payments_webhook_failed_events",
                help: "Stripe events whose processing failed and waits for a retry",
                value: failed as f64,
            },
        ]
    }
}
