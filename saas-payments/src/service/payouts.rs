//! Escrow release and payouts: a release credits the payee and creates a payout; a payout
//! is executed in two phases (marked processing in a transaction, then the Stripe transfer
//! outside it, keyed by the payout) and finished by Stripe's transfer events.

use chrono::{Datelike, Utc};
use uuid::Uuid;

use saas_core::{ServiceError, ServiceResult, with_pool};
use saas_toolkit::Page;
use saas_toolkit::pagination::{PageParams, TimeCursor};

use super::orders::{OrderChange, permission_denied};
use super::{Actor, EXECUTE_PAYOUT_JOB, PaymentsService, now, record_transition};
use crate::ledger::{Account, Posting, post_in_tx};
use crate::models::{Order, Payout};
use crate::states::{OrderAction, OrderState, PayoutAction, PayoutState};
use crate::stripe::{NewTransfer, StripeFailure};

/// How long one executor holds a payout's transfer call; a holder that crashed is replaced
/// after it.
const TRANSFER_LEASE: chrono::Duration = chrono::Duration::seconds(60);

impl PaymentsService {
    /// The payer (or staff) releases a held escrow order: the payee is credited and a payout
    /// is created and queued. Releasing a released or settled order again succeeds and
    /// does nothing; racing releases serialise on the order's row.
    pub async fn release(&self, user: Uuid, id: Uuid) -> ServiceResult<Order> {
        let order = self.order_for(user, id).await?;
        if order.payer_id != user && !self.is_staff(user).await? {
            return Err(permission_denied());
        }
        self.release_order(id, &Actor::user(user)).await
    }

    /// Releases a held order (the rules of [`PaymentsService::release`], without the caller check).
    pub async fn release_order(&self, id: Uuid, actor: &Actor) -> ServiceResult<Order> {
        let order = self.order(id).await?.ok_or_else(|| ServiceError::not_found("order"))?;
        let strategy = self.strategy_of(&order.strategy_type)?;
        let changed = self
            .change_order(id, actor, |order| match order.state {
                OrderState::Released | OrderState::Settled => Ok(None),
                _ => {
                    order.state.apply(OrderAction::Release)?;
                    let release = strategy.on_release(order)?;
                    Ok(Some(OrderChange {
                        actions: vec![OrderAction::Release],
                        postings: release.postings,
                        payout: release.payout,
                        waits_for_refunds: true,
                        ..OrderChange::default()
                    }))
                }
            })
            .await?;
        if changed.order.state != changed.before.state {
            if let Some(payout) = &changed.payout {
                self.enqueue(EXECUTE_PAYOUT_JOB, serde_json::json!({"payout_id": payout.id})).await;
            }
            if let Some(events) = self.events() {
                events.funds_released(self.ctx(), &changed.order).await;
            }
        }
        Ok(changed.order)
    }

    /// Releases every held order whose hold expired; returns how many.
    pub async fn release_expired_holds(&self) -> ServiceResult<usize> {
        let ids: Vec<Uuid> = with_pool!(self.db(), pool => sqlx::query_scalar(
            "SELECT id FROM payment_orders WHERE state = 'held' AND hold_expires_at <= $1 ORDER BY hold_expires_at LIMIT 500")
            .bind(now()).fetch_all(pool).await)?;
        let actor = Actor::system("cron:expire_holds");
        let mut released = 0;
        for id in ids {
            match self.release_order(id, &actor).await {
                Ok(_) => released += 1,
                Err(err) => tracing::warn!(order = %id, error = %err, "an expired hold could not be released"),
            }
        }
        Ok(released)
    }

    /// The payouts to the caller, newest first.
    pub async fn payouts(&self, user: Uuid, page: &PageParams) -> ServiceResult<Page<Payout>> {
        self.newest_first(
            "SELECT * FROM payment_payouts WHERE payee_id = $1 \
             AND ($2 IS NULL OR created_at < $2 OR (created_at = $2 AND id < $3)) \
             ORDER BY created_at DESC, id DESC LIMIT $4",
            user,
            page,
            |p: &Payout| TimeCursor { created_at: p.created_at, id: p.id },
        )
        .await
    }

    /// A payout by id.
    pub async fn payout(&self, id: Uuid) -> ServiceResult<Option<Payout>> {
        Ok(with_pool!(self.db(), pool => sqlx::query_as::<_, Payout>("SELECT * FROM payment_payouts WHERE id = $1")
            .bind(id).fetch_optional(pool).await)?)
    }

    /// Executes a payout. Phase one marks it processing (a transaction); phase two creates
    /// the Stripe transfer (keyed `payout:{id}:transfer`, so a retry never pays twice) and
    /// stores its id; the transfer's events finish it. A payee whose Connect account cannot
    /// receive payouts yet keeps the payout pending. Transient Stripe errors are returned
    /// (the job retries with backoff); permanent ones fail the payout.
    pub async fn execute_payout(&self, id: Uuid) -> ServiceResult<Payout> {
        let payout = self.payout(id).await?.ok_or_else(|| ServiceError::not_found("payout"))?;
        let resumable = payout.state == PayoutState::Processing && payout.stripe_transfer_id.is_none();
        if !matches!(payout.state, PayoutState::Pending | PayoutState::Scheduled) && !resumable {
            return Ok(payout);
        }
        let account = match self.connected_account(payout.payee_id).await? {
            Some(account) if account.payouts_enabled => account,
            _ => return Ok(payout),
        };
        if !resumable
            && self.change_payout(id, PayoutAction::Process, &Actor::system("payout:execute"), None).await?.is_none()
        {
            return self.payout(id).await?.ok_or_else(|| ServiceError::not_found("payout"));
        }
        // One executor at a time holds the transfer: a resume racing the first attempt (a
        // job retry, the cron) finds it leased and leaves it.
        let Some(payout) = self.lease_transfer(id, resumable).await? else {
            return self.payout(id).await?.ok_or_else(|| ServiceError::not_found("payout"));
        };
        let transfer_group = payout.order_id.map(|order| format!("order_{order}"));
        let new = NewTransfer {
            amount_cents: payout.amount_cents,
            currency: &payout.currency,
            destination: &account.stripe_account_id,
            transfer_group: transfer_group.as_deref(),
            metadata: vec![("payout_id", payout.id.to_string())],
        };
        match self.stripe().create_transfer(&new, &format!("payout:{id}:transfer")).await {
            Ok(transfer) => Ok(with_pool!(self.db(), pool => sqlx::query_as::<_, Payout>(
                "UPDATE payment_payouts SET stripe_transfer_id = $2, updated_at = $3 WHERE id = $1 RETURNING *")
                .bind(id).bind(&transfer.id).bind(now()).fetch_one(pool).await)?),
            Err(failure @ StripeFailure::Transient(_)) => {
                // The retry may resume at once.
                self.release_transfer(id).await?;
                Err(failure.into())
            }
            Err(failure) => {
                let failed = self
                    .change_payout(
                        id,
                        PayoutAction::Fail,
                        &Actor::system("stripe:transfer"),
                        Some(&failure.to_string()),
                    )
                    .await?;
                if let (Some(payout), Some(events)) = (&failed, self.events()) {
                    events.payout_failed(self.ctx(), payout).await;
                }
                Ok(failed.unwrap_or(payout))
            }
        }
    }

    /// Takes the transfer of a processing payout for [`TRANSFER_LEASE`]: a payout this
    /// executor just moved to processing is its own; resuming one counts an attempt and waits
    /// for any other holder's lease to end. `None` when another executor holds it or it is
    /// transferred.
    async fn lease_transfer(&self, id: Uuid, resuming: bool) -> ServiceResult<Option<Payout>> {
        let now = now();
        let until = now + TRANSFER_LEASE;
        Ok(with_pool!(self.db(), pool => sqlx::query_as::<_, Payout>(
            "UPDATE payment_payouts SET attempts = attempts + $2, transfer_lease_until = $3, updated_at = $4 \
             WHERE id = $1 AND state = 'processing' AND stripe_transfer_id IS NULL \
             AND ($5 OR transfer_lease_until IS NULL OR transfer_lease_until < $4) RETURNING *")
            .bind(id).bind(i32::from(resuming)).bind(until).bind(now).bind(!resuming).fetch_optional(pool).await)?)
    }

    /// Gives the transfer up after a transient failure, so the retry need not wait for the lease.
    async fn release_transfer(&self, id: Uuid) -> ServiceResult<()> {
        with_pool!(self.db(), pool => sqlx::query("UPDATE payment_payouts SET transfer_lease_until = NULL WHERE id = $1")
            .bind(id).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Moves a payout by `action` if its fresh state allows it (`None` otherwise); marking it
    /// processing counts an attempt; failing it stores the reason.
    async fn change_payout(
        &self,
        id: Uuid,
        action: PayoutAction,
        actor: &Actor,
        failure: Option<&str>,
    ) -> ServiceResult<Option<Payout>> {
        let now = now();
        let attempt = i32::from(action == PayoutAction::Process);
        with_pool!(self.db(), pool => async {
            let mut tx = pool.begin().await?;
            let current: Payout = sqlx::query_as(
                "UPDATE payment_payouts SET updated_at = updated_at WHERE id = $1 RETURNING *")
                .bind(id).fetch_optional(&mut *tx).await?.ok_or_else(|| ServiceError::not_found("payout"))?;
            let Ok(next) = current.state.apply(action) else {
                tx.rollback().await?;
                return Ok(None);
            };
            record_transition!(tx, "payout", id, current.state, next, action, actor.user_id, &actor.reason, now).await?;
            let payout: Payout = sqlx::query_as(
                "UPDATE payment_payouts SET state = $2, attempts = attempts + $3, failure_reason = COALESCE($4, failure_reason), \
                 updated_at = $5 WHERE id = $1 RETURNING *")
                .bind(id).bind(next.as_str()).bind(attempt).bind(failure).bind(now)
                .fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(Some(payout))
        }.await)
    }

    /// Stripe says the payout's transfer went through: the payout is paid, its amount leaves
    /// the payee's balance, and a released order it pays out is settled — one transaction.
    pub async fn payout_paid(&self, id: Uuid, actor: &Actor) -> ServiceResult<Option<Payout>> {
        let Some(payout) = self.payout(id).await? else {
            return Ok(None);
        };
        let now = now();
        let posting = Posting::new(
            Account::user(payout.payee_id, &payout.currency),
            Account::stripe(&payout.currency),
            payout.amount_cents,
            format!("payout:{id}:completion"),
        )
        .described("Payout to the payee's account");
        let result: ServiceResult<Option<Payout>> = with_pool!(self.db(), pool => async {
            let mut tx = pool.begin().await?;
            let order: Option<Order> = match payout.order_id {
                Some(order_id) => sqlx::query_as(
                    "UPDATE payment_orders SET updated_at = updated_at WHERE id = $1 RETURNING *")
                    .bind(order_id).fetch_optional(&mut *tx).await?,
                None => None,
            };
            let current: Payout = sqlx::query_as(
                "UPDATE payment_payouts SET updated_at = updated_at WHERE id = $1 RETURNING *")
                .bind(id).fetch_one(&mut *tx).await?;
            let Ok(next) = current.state.apply(PayoutAction::Complete) else {
                tx.rollback().await?;
                return Ok(None);
            };
            record_transition!(tx, "payout", id, current.state, next, PayoutAction::Complete, actor.user_id, &actor.reason, now).await?;
            let paid: Payout = sqlx::query_as(
                "UPDATE payment_payouts SET state = $2, updated_at = $3 WHERE id = $1 RETURNING *")
                .bind(id).bind(next.as_str()).bind(now).fetch_one(&mut *tx).await?;
            post_in_tx!(tx, std::slice::from_ref(&posting)).await?;
            if let Some(order) = order.filter(|o| o.state == OrderState::Released) {
                let settled = order.state.apply(OrderAction::Settle)?;
                record_transition!(tx, "order", order.id, order.state, settled, OrderAction::Settle, actor.user_id, &actor.reason, now).await?;
                sqlx::query("UPDATE payment_orders SET state = $2, updated_at = $3 WHERE id = $1")
                    .bind(order.id).bind(settled.as_str()).bind(now).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(Some(paid))
        }.await);
        let paid = result?;
        if let (Some(payout), Some(events)) = (&paid, self.events()) {
            events.payout_paid(self.ctx(), payout).await;
        }
        Ok(paid)
    }

    /// Stripe says the payout's transfer failed: the payout fails (the payee's balance still
    /// holds the money; staff may retry it).
    pub async fn payout_failed(&self, id: Uuid, reason: &str, actor: &Actor) -> ServiceResult<Option<Payout>> {
        let failed = self.change_payout(id, PayoutAction::Fail, actor, Some(reason)).await?;
        if let (Some(payout), Some(events)) = (&failed, self.events()) {
            events.payout_failed(self.ctx(), payout).await;
        }
        Ok(failed)
    }

    /// The payout of an escrow order, if one was created.
    pub async fn order_payout(&self, order_id: Uuid) -> ServiceResult<Option<Payout>> {
        Ok(
            with_pool!(self.db(), pool => sqlx::query_as::<_, Payout>("SELECT * FROM payment_payouts WHERE order_id = $1")
            .bind(order_id).fetch_optional(pool).await)?,
        )
    }

    /// The payout of a Stripe transfer.
    pub async fn payout_by_transfer(&self, transfer: &str) -> ServiceResult<Option<Payout>> {
        Ok(with_pool!(self.db(), pool => sqlx::query_as::<_, Payout>(
            "SELECT * FROM payment_payouts WHERE stripe_transfer_id = $1")
            .bind(transfer).fetch_optional(pool).await)?)
    }

    /// Staff retries a failed payout: it is pending again and queued.
    pub async fn retry_payout(&self, id: Uuid, actor: &Actor) -> ServiceResult<Payout> {
        let payout = self.payout(id).await?.ok_or_else(|| ServiceError::not_found("payout"))?;
        payout.state.apply(PayoutAction::Retry)?;
        let retried = self.change_payout(id, PayoutAction::Retry, actor, None).await?;
        let payout = match retried {
            Some(payout) => payout,
            None => {
                return Err(payout
                    .state
                    .apply(PayoutAction::Retry)
                    .err()
                    .unwrap_or_else(|| ServiceError::not_found("payout")));
            }
        };
        self.enqueue(EXECUTE_PAYOUT_JOB, serde_json::json!({"payout_id": id})).await;
        Ok(payout)
    }

    /// Queues every payout waiting to be executed (pending, scheduled, or processing without
    /// a transfer for over ten minutes); returns how many.
    pub async fn queue_pending_payouts(&self) -> ServiceResult<usize> {
        let stale = now() - chrono::Duration::minutes(10);
        let ids: Vec<Uuid> = with_pool!(self.db(), pool => sqlx::query_scalar(
            "SELECT id FROM payment_payouts WHERE state IN ('pending', 'scheduled') \
             OR (state = 'processing' AND stripe_transfer_id IS NULL AND updated_at < $1) ORDER BY created_at LIMIT 1000")
            .bind(stale).fetch_all(pool).await)?;
        for id in &ids {
            self.enqueue(EXECUTE_PAYOUT_JOB, serde_json::json!({"payout_id": id})).await;
        }
        Ok(ids.len())
    }

    /// The monthly aggregated payouts: every user balance holding at least
    /// `MINIMUM_PAYOUT_AMOUNT_CENTS` beyond its open payouts gets one payout for the month
    /// (one per user, currency and month, whatever how often this runs); returns how many.
    pub async fn create_monthly_payouts(&self) -> ServiceResult<usize> {
        let today = Utc::now();
        let period = format!("{:04}-{:02}", today.year(), today.month());
        let minimum = self.policy().minimum_payout_cents.max(1);
        let due: Vec<(Uuid, String, i64)> = with_pool!(self.db(), pool => sqlx::query_as(
            "SELECT a.user_id, a.currency, a.balance_cents - COALESCE((SELECT CAST(SUM(p.amount_cents) AS BIGINT) FROM payment_payouts p \
             WHERE p.payee_id = a.user_id AND p.currency = a.currency AND p.state IN ('pending', 'scheduled', 'processing')), 0) \
             FROM payments_ledger_accounts a WHERE a.account_type = 'user_balance' AND a.balance_cents >= $1")
            .bind(minimum).fetch_all(pool).await)?;
        let now = now();
        let mut created = 0;
        for (user, currency, amount) in due.into_iter().filter(|(_, _, amount)| *amount >= minimum) {
            let id: Option<Uuid> = with_pool!(self.db(), pool => sqlx::query_scalar(
                "INSERT INTO payment_payouts (id, payee_id, amount_cents, currency, state, period, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 'pending', $5, $6, $6) ON CONFLICT (payee_id, currency, period) DO NOTHING RETURNING id")
                .bind(Uuid::now_v7()).bind(user).bind(amount).bind(&currency).bind(&period).bind(now)
                .fetch_optional(pool).await)?;
            if let Some(id) = id {
                created += 1;
                self.enqueue(EXECUTE_PAYOUT_JOB, serde_json::json!({"payout_id": id})).await;
            }
        }
        Ok(created)
    }
}
