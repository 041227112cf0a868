//! Refunds: requested by the payee or staff, checked against the order's state and
//! refundable remainder, the money taken back from whoever was credited (a pending payout
//! of the order is cancelled first), sent to Stripe keyed by the refund, and completed by
//! `charge.refunded`, which posts the reversal out of escrow.

use serde::Deserialize;
use uuid::Uuid;

use saas_core::{ServiceError, ServiceResult, with_pool};

use super::orders::{OrderChange, permission_denied, refund_in_progress};
use super::{Actor, PaymentsService, now, record_transition};
use crate::ledger::{Account, Posting, check_postings, post_in_tx};
use crate::models::{Order, Payout, Refund};
use crate::states::{OrderAction, OrderState, PayoutAction, PayoutState, RefundAction, RefundState};

/// `POST orders/{id}/refund/`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct RefundRequest {
    /// Cents to refund [everything refundable].
    pub amount_cents: Option<i64>,
    /// Why.
    pub reason: Option<String>,
}

impl PaymentsService {
    /// The payee or staff refunds (part of) an order; the payer's request is refused (403).
    pub async fn refund(&self, user: Uuid, id: Uuid, request: RefundRequest) -> ServiceResult<Refund> {
        let order = self.order_for(user, id).await?;
        if order.payee_id != Some(user) && !self.is_staff(user).await? {
            return Err(permission_denied());
        }
        self.refund_order(id, request, &Actor::user(user)).await
    }

    /// Refunds an order (the rules of [`PaymentsService::refund`] without the caller check).
    pub async fn refund_order(&self, id: Uuid, request: RefundRequest, actor: &Actor) -> ServiceResult<Refund> {
        let reason = request.reason.unwrap_or_default();
        if reason.chars().count() > 500 {
            return Err(ServiceError::invalid_field("reason", "Ensure this field has no more than 500 characters."));
        }
        if request.amount_cents.is_some_and(|amount| amount <= 0) {
            return Err(ServiceError::invalid_field("amount_cents", "Ensure this value is greater than 0."));
        }
        let order = self.order(id).await?.ok_or_else(|| ServiceError::not_found("order"))?;
        let strategy = self.strategy_of(&order.strategy_type)?;
        let refund_id = Uuid::now_v7();
        let now = now();
        // Phase one: the refund is recorded and the money taken back into escrow.
        let result: ServiceResult<(Order, Refund)> = with_pool!(self.db(), pool => async {
            let mut tx = pool.begin().await?;
            let order: Order = sqlx::query_as(
                "UPDATE payment_orders SET updated_at = updated_at WHERE id = $1 RETURNING *")
                .bind(id).fetch_one(&mut *tx).await?;
            if !order.state.is_refundable() {
                return Err(order.state.apply(OrderAction::RefundPartial).err()
                    .unwrap_or_else(|| ServiceError::internal("refundable state refused")));
            }
            let open: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM payment_refunds WHERE order_id = $1 AND state IN ('requested', 'processing')")
                .bind(id).fetch_one(&mut *tx).await?;
            if open > 0 {
                return Err(refund_in_progress());
            }
            let refundable = order.refundable_cents();
            let amount = request.amount_cents.unwrap_or(refundable);
            if refundable == 0 {
                return Err(ServiceError::conflict("payments.nothing_to_refund", "Nothing of this order is left to refund."));
            }
            if amount > refundable {
                return Err(ServiceError::invalid_field("amount_cents", format!("At most {refundable} can be refunded.")));
            }
            if matches!(order.state, OrderState::Released | OrderState::Settled | OrderState::PartiallyRefunded) {
                // Locks the payout's row: a payout being executed at this moment waits or is seen.
                let payout: Option<Payout> = sqlx::query_as(
                    "UPDATE payment_payouts SET updated_at = updated_at WHERE order_id = $1 RETURNING *")
                    .bind(id).fetch_optional(&mut *tx).await?;
                if let Some(payout) = payout {
                    match payout.state {
                        PayoutState::Pending | PayoutState::Scheduled => {
                            let next = payout.state.apply(PayoutAction::Cancel)?;
                            record_transition!(tx, "payout", payout.id, payout.state, next, PayoutAction::Cancel,
                                actor.user_id, "refund", now).await?;
                            sqlx::query("UPDATE payment_payouts SET state = $2, updated_at = $3 WHERE id = $1")
                                .bind(payout.id).bind(next.as_str()).bind(now).execute(&mut *tx).await?;
                        }
                        PayoutState::Processing | PayoutState::Paid => {
                            return Err(ServiceError::conflict("payments.payout_in_progress",
                                "The payee's payout of this order is under way or paid; it cannot be refunded.")
                                .with_detail("payout_state", payout.state.to_string()));
                        }
                        PayoutState::Failed | PayoutState::Cancelled => {}
                    }
                }
            }
            let takeback = strategy.refund_takeback(&order, refund_id, amount);
            check_postings(&takeback)?;
            // A user's balance promised to an open payout cannot be taken back.
            for posting in takeback.iter().filter(|p| p.debit.user_id.is_some()) {
                let available: Option<i64> = sqlx::query_scalar(
                    "SELECT a.balance_cents - COALESCE((SELECT CAST(SUM(p.amount_cents) AS BIGINT) FROM payment_payouts p \
                     WHERE p.payee_id = a.user_id AND p.currency = a.currency \
                     AND p.state IN ('pending', 'scheduled', 'processing')), 0) \
                     FROM payments_ledger_accounts a WHERE a.account_key = $1")
                    .bind(posting.debit.key()).fetch_optional(&mut *tx).await?;
                if available.unwrap_or(0) < posting.amount_cents {
                    return Err(ServiceError::conflict("payments.insufficient_funds",
                        "The payee's balance no longer holds this amount (it is paid out or promised to a payout).")
                        .with_detail("account", posting.debit.key()));
                }
            }
            let refund: Refund = sqlx::query_as(
                "INSERT INTO payment_refunds (id, order_id, amount_cents, reason, state, requested_by, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 'requested', $5, $6, $6) RETURNING *")
                .bind(refund_id).bind(id).bind(amount).bind(&reason).bind(actor.user_id).bind(now)
                .fetch_one(&mut *tx).await?;
            if !takeback.is_empty() {
                post_in_tx!(tx, &takeback).await?;
            }
            tx.commit().await?;
            Ok((order, refund))
        }.await);
        let (order, refund) = result?;
        // Phase two: Stripe, outside any transaction, keyed by the refund.
        let refund = self.move_refund(refund.id, RefundAction::Process, actor, None).await?.unwrap_or(refund);
        let intent = order.stripe_payment_intent_id.clone().unwrap_or_default();
        let metadata = [("refund_id", refund.id.to_string()), ("order_id", order.id.to_string())];
        match self
            .stripe()
            .create_refund(&intent, refund.amount_cents, &metadata, &format!("refund:{}", refund.id))
            .await
        {
            Ok(stripe_refund) => Ok(with_pool!(self.db(), pool => sqlx::query_as::<_, Refund>(
                "UPDATE payment_refunds SET stripe_refund_id = $2, updated_at = $3 WHERE id = $1 RETURNING *")
                .bind(refund.id).bind(&stripe_refund.id).bind(now).fetch_one(pool).await)?),
            Err(failure) => {
                self.fail_refund(&order, &refund, &failure.to_string(), actor).await?;
                Err(failure.into())
            }
        }
    }

    /// Undoes a refund Stripe refused: failed, and the money taken back returned.
    async fn fail_refund(&self, order: &Order, refund: &Refund, reason: &str, actor: &Actor) -> ServiceResult<()> {
        let strategy = self.strategy_of(&order.strategy_type)?;
        let restore: Vec<Posting> = strategy
            .refund_takeback(order, refund.id, refund.amount_cents)
            .into_iter()
            .map(|p| {
                let key = format!("{}:restore", p.idempotency_key);
                Posting::new(p.credit, p.debit, p.amount_cents, key).described("Refund failed: returned")
            })
            .collect();
        self.move_refund(refund.id, RefundAction::Fail, actor, Some(reason)).await?;
        if !restore.is_empty() {
            self.ledger().post(&restore).await?;
        }
        Ok(())
    }

    /// Moves a refund by `action` if its fresh state allows it.
    async fn move_refund(
        &self,
        id: Uuid,
        action: RefundAction,
        actor: &Actor,
        failure: Option<&str>,
    ) -> ServiceResult<Option<Refund>> {
        let now = now();
        with_pool!(self.db(), pool => async {
            let mut tx = pool.begin().await?;
            let current: Refund = sqlx::query_as("UPDATE payment_refunds SET updated_at = updated_at WHERE id = $1 RETURNING *")
                .bind(id).fetch_one(&mut *tx).await?;
            let Ok(next) = current.state.apply(action) else {
                tx.rollback().await?;
                return Ok(None);
            };
            record_transition!(tx, "refund", id, current.state, next, action, actor.user_id, &actor.reason, now).await?;
            let refund: Refund = sqlx::query_as(
                "UPDATE payment_refunds SET state = $2, failure_reason = COALESCE($3, failure_reason), updated_at = $4 \
                 WHERE id = $1 RETURNING *")
                .bind(id).bind(next.as_str()).bind(failure).bind(now).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(Some(refund))
        }.await)
    }

    /// The refunds of an order, oldest first.
    pub async fn refunds(&self, order_id: Uuid) -> ServiceResult<Vec<Refund>> {
        Ok(with_pool!(self.db(), pool => sqlx::query_as::<_, Refund>(
            "SELECT * FROM payment_refunds WHERE order_id = $1 ORDER BY created_at, id")
            .bind(order_id).fetch_all(pool).await)?)
    }

    /// Stripe says the charge of `payment_intent` was refunded up to `amount_refunded`: every
    /// processing refund of the order that amount covers is completed — the reversal leaves
    /// escrow for Stripe and the order is refunded in full or in part.
    pub async fn charge_refunded(
        &self,
        payment_intent: &str,
        amount_refunded: i64,
        actor: &Actor,
    ) -> ServiceResult<Option<Order>> {
        let Some(order) = self.order_by_payment_intent(payment_intent).await? else {
            return Ok(None);
        };
        let mut last = None;
        for refund in self.refunds(order.id).await? {
            if refund.state != RefundState::Processing {
                continue;
            }
            let Some(order) = self.complete_refund(order.id, &refund, amount_refunded, actor).await? else {
                continue;
            };
            if let Some(events) = self.events() {
                let refund = Refund { state: RefundState::Completed, ..refund };
                events.refund_issued(self.ctx(), &order, &refund).await;
            }
            last = Some(order);
        }
        match last {
            Some(order) => Ok(Some(order)),
            None => self.order(order.id).await,
        }
    }

    async fn complete_refund(
        &self,
        order_id: Uuid,
        refund: &Refund,
        amount_refunded: i64,
        actor: &Actor,
    ) -> ServiceResult<Option<Order>> {
        let (refund_id, amount) = (refund.id, refund.amount_cents);
        let changed = self
            .change_order(order_id, actor, |order| {
                if order.refunded_cents + amount > amount_refunded {
                    return Ok(None);
                }
                // A partial refund of held funds keeps the rest held: it can still be released
                // (or expire) and refunded later.
                let actions = if order.refundable_cents() <= amount {
                    vec![OrderAction::RefundFull]
                } else if order.state == OrderState::Held {
                    Vec::new()
                } else {
                    vec![OrderAction::RefundPartial]
                };
                let currency = &order.currency;
                let reversal = Posting::new(
                    Account::escrow(currency),
                    Account::stripe(currency),
                    amount,
                    format!("refund:{refund_id}:reversal"),
                )
                .described("Refund to the payer");
                Ok(Some(OrderChange {
                    actions,
                    refunded_cents: amount,
                    postings: vec![reversal],
                    complete_refund: Some(refund_id),
                    ..OrderChange::default()
                }))
            })
            .await?;
        Ok((changed.order.refunded_cents != changed.before.refunded_cents).then_some(changed.order))
    }
}
