//! Reconciliation: local orders, payouts and subscriptions compared with Stripe. What is
//! safe is healed through the same transitions webhooks use (a missed
//! `payment_intent.succeeded`, a transfer whose event never came, a subscription's
//! status); the rest is flagged for staff.

use serde::Serialize;
use uuid::Uuid;

use saas_core::{ServiceResult, with_pool};

use super::{Actor, PaymentsService, now};
use crate::models::{Order, Payout, ReconciliationIssue};

/// What one reconciliation run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReconciliationReport {
    /// Objects compared with Stripe.
    pub checked: usize,
    /// Objects brought in line with Stripe.
    pub healed: usize,
    /// New issues flagged for staff.
    pub flagged: usize,
}

impl PaymentsService {
    /// Records an issue for staff (once per object and kind); `true` when it is new.
    pub async fn flag(&self, object_type: &str, object_id: &str, kind: &str, detail: &str) -> ServiceResult<bool> {
        tracing::warn!(object_type, object_id, kind, detail, "payments reconciliation issue");
        let inserted = with_pool!(self.db(), pool => sqlx::query(
            "INSERT INTO payment_reconciliation_issues (id, object_type, object_id, kind, detail, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (object_type, object_id, kind) DO NOTHING")
            .bind(Uuid::now_v7()).bind(object_type).bind(object_id).bind(kind).bind(detail).bind(now())
            .execute(pool).await.map(|done| done.rows_affected()))?;
        Ok(inserted == 1)
    }

    /// The open issues, newest first (at most 500).
    pub async fn reconciliation_issues(&self) -> ServiceResult<Vec<ReconciliationIssue>> {
        Ok(with_pool!(self.db(), pool => sqlx::query_as::<_, ReconciliationIssue>(
            "SELECT * FROM payment_reconciliation_issues WHERE NOT resolved ORDER BY created_at DESC LIMIT 500")
            .fetch_all(pool).await)?)
    }

    /// Staff marks an issue resolved.
    pub async fn resolve_issue(&self, id: Uuid) -> ServiceResult<bool> {
        let updated = with_pool!(self.db(), pool => sqlx::query(
            "UPDATE payment_reconciliation_issues SET resolved = TRUE WHERE id = $1 AND NOT resolved")
            .bind(id).execute(pool).await.map(|done| done.rows_affected()))?;
        Ok(updated == 1)
    }

    /// Compares what changed in the last `window` (and is still in flight) with Stripe.
    pub async fn reconcile(&self, window: chrono::Duration) -> ServiceResult<ReconciliationReport> {
        let since = now() - window;
        let settle_after = now() - chrono::Duration::minutes(10);
        let mut report = ReconciliationReport::default();
        let orders: Vec<Order> = with_pool!(self.db(), pool => sqlx::query_as(
            "SELECT * FROM payment_orders WHERE state IN ('pending', 'processing', 'failed') \
             AND stripe_payment_intent_id IS NOT NULL AND updated_at >= $1 AND updated_at < $2 LIMIT 1000")
            .bind(since).bind(settle_after).fetch_all(pool).await)?;
        let actor = Actor::system("reconciliation");
        for order in orders {
            report.checked += 1;
            let intent_id = order.stripe_payment_intent_id.clone().unwrap_or_default();
            let intent = match self.stripe().retrieve_payment_intent(&intent_id).await {
                Ok(intent) => intent,
                Err(err) if err.is_transient() => return Err(err.into()),
                Err(err) => {
                    report.flagged += usize::from(
                        self.flag("order", &order.id.to_string(), "stripe_missing", &err.to_string()).await?,
                    );
                    continue;
                }
            };
            if intent.amount_cents != order.amount_cents || intent.currency != order.currency {
                let detail = format!(
                    "Stripe has {} {}, the order {} {}",
                    intent.amount_cents, intent.currency, order.amount_cents, order.currency
                );
                report.flagged +=
                    usize::from(self.flag("order", &order.id.to_string(), "amount_mismatch", &detail).await?);
                continue;
            }
            let before = order.state;
            let after = match intent.status.as_str() {
                "succeeded" => self.payment_succeeded(&intent_id, &actor).await?,
                "canceled" => self.payment_canceled(&intent_id, &actor).await?,
                _ => None,
            };
            if after.is_some_and(|o| o.state != before) {
                report.healed += 1;
            }
        }
        let payouts: Vec<Payout> = with_pool!(self.db(), pool => sqlx::query_as(
            "SELECT * FROM payment_payouts WHERE state = 'processing' AND updated_at < $1 LIMIT 1000")
            .bind(settle_after).fetch_all(pool).await)?;
        for payout in payouts {
            report.checked += 1;
            match &payout.stripe_transfer_id {
                Some(transfer) => match self.stripe().retrieve_transfer(transfer).await {
                    Ok(info) if !info.reversed && info.amount_cents == payout.amount_cents => {
                        match self.payout_paid(payout.id, &actor).await {
                            Ok(_) => report.healed += 1,
                            Err(err) => {
                                let id = payout.id.to_string();
                                report.flagged +=
                                    usize::from(self.flag("payout", &id, "completion_failed", &err.to_string()).await?);
                            }
                        }
                    }
                    Ok(info) => {
                        let detail =
                            format!("transfer {} amount {} reversed {}", info.id, info.amount_cents, info.reversed);
                        report.flagged += usize::from(
                            self.flag("payout", &payout.id.to_string(), "transfer_mismatch", &detail).await?,
                        );
                    }
                    Err(err) if err.is_transient() => return Err(err.into()),
                    Err(err) => {
                        report.flagged += usize::from(
                            self.flag("payout", &payout.id.to_string(), "stripe_missing", &err.to_string()).await?,
                        );
                    }
                },
                None => {
                    let detail = "processing for over ten minutes without a transfer";
                    report.flagged +=
                        usize::from(self.flag("payout", &payout.id.to_string(), "transfer_missing", detail).await?);
                }
            }
        }
        let subscriptions: Vec<Uuid> = with_pool!(self.db(), pool => sqlx::query_scalar(
            "SELECT id FROM payment_subscriptions WHERE state <> 'cancelled' AND stripe_subscription_id IS NOT NULL \
             AND updated_at >= $1 ORDER BY updated_at LIMIT 1000")
            .bind(since).fetch_all(pool).await)?;
        for id in subscriptions {
            report.checked += 1;
            let before = self.subscription_state(id).await?;
            match self.sync_subscription(id).await {
                Ok(after) if Some(after.state) != before => report.healed += 1,
                Ok(_) => {}
                Err(err) if err.status().is_server_error() => return Err(err),
                Err(err) => {
                    report.flagged += usize::from(
                        self.flag("subscription", &id.to_string(), "stripe_missing", &err.to_string()).await?,
                    );
                }
            }
        }
        Ok(report)
    }

    async fn subscription_state(&self, id: Uuid) -> ServiceResult<Option<crate::states::SubscriptionState>> {
        let state: Option<String> = with_pool!(self.db(), pool => sqlx::query_scalar(
            "SELECT state FROM payment_subscriptions WHERE id = $1").bind(id).fetch_optional(pool).await)?;
        Ok(state.and_then(|s| crate::states::SubscriptionState::parse(&s)))
    }
}
