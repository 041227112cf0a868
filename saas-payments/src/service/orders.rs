//! Orders: creation through their strategy, reads, cancellation, and what a payment's
//! success or failure does to them. Every change is one transaction that first locks the
//! order's row (an update of it), then checks the transitions on the fresh state.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use saas_core::{ServiceError, ServiceResult, ValidationErrors, with_pool};
use saas_toolkit::Page;
use saas_toolkit::pagination::{PageParams, TimeCursor};

use super::{Actor, PaymentsService, now, record_transition};
use crate::ledger::{Posting, check_postings, post_in_tx};
use crate::models::{Order, Payout, Refund};
use crate::states::{OrderAction, OrderState, RefundAction};
use crate::strategy::{NewOrder, OnPaid};

const MAX_DESCRIPTION: usize = 500;
const MAX_REFERENCE: usize = 255;

/// `POST orders/`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct CreateOrder {
    /// `direct`, `escrow` or an app's own strategy.
    pub strategy_type: String,
    /// Positive, in cents.
    pub amount_cents: i64,
    /// ISO code [usd].
    pub currency: Option<String>,
    /// Who is paid (escrow needs one).
    pub payee_id: Option<Uuid>,
    /// Shown to the payer.
    pub description: Option<String>,
    /// What the order pays for, in the app's terms.
    pub reference_type: Option<String>,
    /// Its id in the app.
    pub reference_id: Option<String>,
    /// The app's own data: a JSON object.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// A change of one order, decided on its locked, fresh row.
#[derive(Debug, Default)]
pub(crate) struct OrderChange {
    pub actions: Vec<OrderAction>,
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub refunded_cents: i64,
    pub postings: Vec<Posting>,
    pub payout: Option<(Uuid, i64)>,
    pub payment_intent: Option<(String, Option<String>)>,
    /// A processing refund this change completes.
    pub complete_refund: Option<Uuid>,
    /// Refused with `payments.refund_in_progress` while a refund of the order is under way
    /// (it would move money that refund takes back).
    pub waits_for_refunds: bool,
}

/// What a change did.
pub(crate) struct Changed {
    pub before: Order,
    pub order: Order,
    pub payout: Option<Payout>,
}

impl PaymentsService {
    /// Creates an order through its strategy: stored as a draft, charged at Stripe, then
    /// pending with the client secret.
    pub async fn create_order(&self, payer: Uuid, input: CreateOrder) -> ServiceResult<Order> {
        let mut errors = ValidationErrors::default();
        let strategy = match self.strategy(&input.strategy_type) {
            Some(strategy) if strategy.accepts_orders() => Some(strategy.clone()),
            Some(_) => {
                errors.add("strategy_type", "Orders of this strategy are created by their subscription.");
                None
            }
            None => {
                errors.add("strategy_type", format!("Unknown strategy {:?}.", input.strategy_type));
                None
            }
        };
        if input.amount_cents <= 0 {
            errors.add("amount_cents", "Ensure this value is greater than 0.");
        }
        let currency = input.currency.unwrap_or_else(|| "usd".to_owned()).to_ascii_lowercase();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
            errors.add("currency", "A three-letter ISO currency code.");
        }
        let description = input.description.unwrap_or_default();
        if description.chars().count() > MAX_DESCRIPTION {
            errors.add("description", format!("Ensure this field has no more than {MAX_DESCRIPTION} characters."));
        }
        for (field, value) in [("reference_type", &input.reference_type), ("reference_id", &input.reference_id)] {
            if value.as_ref().is_some_and(|v| v.chars().count() > MAX_REFERENCE) {
                errors.add(field, format!("Ensure this field has no more than {MAX_REFERENCE} characters."));
            }
        }
        let metadata = input.metadata.unwrap_or_else(|| serde_json::json!({}));
        if !metadata.is_object() {
            errors.add("metadata", "Must be a JSON object.");
        }
        if let Some(payee) = input.payee_id {
            let directory = saas_auth::directory(self.ctx())?;
            if !directory.user(payee).await?.is_some_and(|user| user.is_active) {
                errors.add("payee_id", "No such user.");
            }
        }
        let Some(strategy) = strategy.filter(|_| errors.is_empty()) else {
            return Err(errors.into_error());
        };
        let new = NewOrder {
            payer_id: payer,
            payee_id: input.payee_id,
            amount_cents: input.amount_cents,
            currency: currency.clone(),
            metadata: metadata.clone(),
        };
        strategy.validate(&new)?;
        let fee = strategy.fee(input.amount_cents, self.policy());
        if !(0..=input.amount_cents).contains(&fee) {
            return Err(ServiceError::internal(format!("strategy {} computed a fee of {fee}", strategy.name())));
        }
        let now = now();
        let order: Order = with_pool!(self.db(), pool => sqlx::query_as(
            "INSERT INTO payment_orders (id, payer_id, payee_id, strategy_type, state, amount_cents, platform_fee_cents, \
             currency, description, reference_type, reference_id, metadata, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'draft', $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING *")
            .bind(Uuid::now_v7()).bind(payer).bind(input.payee_id).bind(strategy.name()).bind(input.amount_cents)
            .bind(fee).bind(&currency).bind(&description).bind(&input.reference_type).bind(&input.reference_id)
            .bind(metadata.to_string()).bind(now)
            .fetch_one(pool).await)?;
        let charge = strategy.create_charge(self.stripe(), &order).await?;
        let intent = charge.payment_intent;
        let changed = self
            .change_order(order.id, &Actor::user(payer), |order| {
                Ok((order.state == OrderState::Draft).then(|| OrderChange {
                    actions: vec![OrderAction::Submit],
                    payment_intent: Some((intent.id.clone(), intent.client_secret.clone())),
                    ..OrderChange::default()
                }))
            })
            .await?;
        Ok(changed.order)
    }

    /// An order the caller may see: payer, payee or staff (404 otherwise).
    pub async fn order_for(&self, user: Uuid, id: Uuid) -> ServiceResult<Order> {
        let order = self.order(id).await?.ok_or_else(|| ServiceError::not_found("order"))?;
        if order.payer_id == user || order.payee_id == Some(user) || self.is_staff(user).await? {
            Ok(order)
        } else {
            Err(ServiceError::not_found("order"))
        }
    }

    /// An order by id.
    pub async fn order(&self, id: Uuid) -> ServiceResult<Option<Order>> {
        Ok(with_pool!(self.db(), pool => sqlx::query_as::<_, Order>("SELECT * FROM payment_orders WHERE id = $1")
            .bind(id).fetch_optional(pool).await)?)
    }

    /// The order of a PaymentIntent.
    pub async fn order_by_payment_intent(&self, payment_intent: &str) -> ServiceResult<Option<Order>> {
        Ok(with_pool!(self.db(), pool => sqlx::query_as::<_, Order>(
            "SELECT * FROM payment_orders WHERE stripe_payment_intent_id = $1")
            .bind(payment_intent).fetch_optional(pool).await)?)
    }

    /// The caller's orders, as payer or payee, newest first.
    pub async fn orders(&self, user: Uuid, page: &PageParams) -> ServiceResult<Page<Order>> {
        self.newest_first(
            "SELECT * FROM payment_orders WHERE (payer_id = $1 OR payee_id = $1) \
             AND ($2 IS NULL OR created_at < $2 OR (created_at = $2 AND id < $3)) \
             ORDER BY created_at DESC, id DESC LIMIT $4",
            user,
            page,
            |o: &Order| TimeCursor { created_at: o.created_at, id: o.id },
        )
        .await
    }

    /// The payer (or staff) cancels a draft or pending order; its PaymentIntent is cancelled.
    pub async fn cancel_order(&self, user: Uuid, id: Uuid) -> ServiceResult<Order> {
        let order = self.order_for(user, id).await?;
        if order.payer_id != user && !self.is_staff(user).await? {
            return Err(permission_denied());
        }
        order.state.apply(OrderAction::Cancel)?;
        if let Some(intent) = &order.stripe_payment_intent_id {
            self.stripe().cancel_payment_intent(intent, &format!("order:{}:cancel", order.id)).await?;
        }
        let changed = self
            .change_order(id, &Actor::user(user), |order| {
                order.state.apply(OrderAction::Cancel)?;
                Ok(Some(OrderChange { actions: vec![OrderAction::Cancel], ..OrderChange::default() }))
            })
            .await?;
        Ok(changed.order)
    }

    /// Stripe says the order's payment succeeded: the order is captured, then settled or
    /// held by its strategy, with the strategy's postings. Does nothing on an order already
    /// past that point (an event arriving late never moves it backwards).
    pub async fn payment_succeeded(&self, payment_intent: &str, actor: &Actor) -> ServiceResult<Option<Order>> {
        let Some(order) = self.order_by_payment_intent(payment_intent).await? else {
            return Ok(None);
        };
        let strategy = self.strategy_of(&order.strategy_type)?;
        let policy = self.policy().clone();
        let changed = self
            .change_order(order.id, actor, |order| {
                let mut actions = match order.state {
                    OrderState::Draft => vec![OrderAction::Submit, OrderAction::Process],
                    OrderState::Pending => vec![OrderAction::Process],
                    OrderState::Failed => vec![OrderAction::Retry, OrderAction::Process],
                    OrderState::Processing => vec![],
                    _ => return Ok(None),
                };
                actions.push(OrderAction::Capture);
                let mut change = OrderChange::default();
                match strategy.on_paid(order, &policy)? {
                    OnPaid::Settle(postings) => {
                        actions.push(OrderAction::Settle);
                        change.postings = postings;
                    }
                    OnPaid::Hold { postings, until } => {
                        actions.push(OrderAction::Hold);
                        change.postings = postings;
                        change.hold_expires_at = Some(until);
                    }
                }
                change.actions = actions;
                Ok(Some(change))
            })
            .await?;
        if changed.order.state != changed.before.state
            && let Some(events) = self.events()
        {
            events.payment_succeeded(self.ctx(), &changed.order).await;
        }
        Ok(Some(changed.order))
    }

    /// Stripe says the order's payment failed: the order fails (a later success retries it).
    pub async fn payment_failed(&self, payment_intent: &str, actor: &Actor) -> ServiceResult<Option<Order>> {
        let Some(order) = self.order_by_payment_intent(payment_intent).await? else {
            return Ok(None);
        };
        let changed = self
            .change_order(order.id, actor, |order| {
                let actions = match order.state {
                    OrderState::Draft => vec![OrderAction::Submit, OrderAction::Process, OrderAction::Fail],
                    OrderState::Pending => vec![OrderAction::Process, OrderAction::Fail],
                    OrderState::Processing => vec![OrderAction::Fail],
                    _ => return Ok(None),
                };
                Ok(Some(OrderChange { actions, ..OrderChange::default() }))
            })
            .await?;
        if changed.order.state != changed.before.state
            && let Some(events) = self.events()
        {
            events.payment_failed(self.ctx(), &changed.order).await;
        }
        Ok(Some(changed.order))
    }

    /// Stripe says the PaymentIntent was cancelled: a draft or pending order is cancelled.
    pub async fn payment_canceled(&self, payment_intent: &str, actor: &Actor) -> ServiceResult<Option<Order>> {
        let Some(order) = self.order_by_payment_intent(payment_intent).await? else {
            return Ok(None);
        };
        let changed = self
            .change_order(order.id, actor, |order| {
                Ok(order
                    .state
                    .apply(OrderAction::Cancel)
                    .is_ok()
                    .then(|| OrderChange { actions: vec![OrderAction::Cancel], ..OrderChange::default() }))
            })
            .await?;
        Ok(Some(changed.order))
    }

    /// Changes one order in one transaction: locks its row, lets `plan` decide on the fresh
    /// state (`None`: nothing to do), checks every transition, stores the new state and the
    /// transitions, records the postings and creates the payout. An illegal transition or an
    /// overdraft undoes everything.
    pub(crate) async fn change_order<F>(&self, id: Uuid, actor: &Actor, plan: F) -> ServiceResult<Changed>
    where
        F: FnOnce(&Order) -> ServiceResult<Option<OrderChange>>,
    {
        let now = now();
        let result: ServiceResult<Changed> = with_pool!(self.db(), pool => async {
            let mut tx = pool.begin().await?;
            let before: Order = sqlx::query_as(
                "UPDATE payment_orders SET updated_at = updated_at WHERE id = $1 RETURNING *")
                .bind(id).fetch_optional(&mut *tx).await?
                .ok_or_else(|| ServiceError::not_found("order"))?;
            let Some(change) = plan(&before)? else {
                tx.rollback().await?;
                return Ok(Changed { order: before.clone(), before, payout: None });
            };
            check_postings(&change.postings)?;
            if change.waits_for_refunds {
                let open: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM payment_refunds WHERE order_id = $1 AND state IN ('requested', 'processing')")
                    .bind(id).fetch_one(&mut *tx).await?;
                if open > 0 {
                    return Err(refund_in_progress());
                }
            }
            let mut state = before.state;
            for action in &change.actions {
                let next = state.apply(*action)?;
                record_transition!(tx, "order", id, state, next, action, actor.user_id, &actor.reason, now).await?;
                state = next;
            }
            let (intent, secret) = change.payment_intent.clone().unzip();
            let order: Order = sqlx::query_as(
                "UPDATE payment_orders SET state = $2, hold_expires_at = COALESCE($3, hold_expires_at), \
                 refunded_cents = refunded_cents + $4, stripe_payment_intent_id = COALESCE($5, stripe_payment_intent_id), \
                 client_secret = COALESCE($6, client_secret), updated_at = $7 WHERE id = $1 RETURNING *")
                .bind(id).bind(state.as_str()).bind(change.hold_expires_at).bind(change.refunded_cents)
                .bind(intent).bind(secret.flatten()).bind(now)
                .fetch_one(&mut *tx).await?;
            if let Some(refund_id) = change.complete_refund {
                let current: Refund = sqlx::query_as("UPDATE payment_refunds SET updated_at = $2 WHERE id = $1 RETURNING *")
                    .bind(refund_id).bind(now).fetch_one(&mut *tx).await?;
                let next = current.state.apply(RefundAction::Complete)?;
                record_transition!(tx, "refund", refund_id, current.state, next, RefundAction::Complete, actor.user_id, &actor.reason, now).await?;
                sqlx::query("UPDATE payment_refunds SET state = $2 WHERE id = $1").bind(refund_id).bind(next.as_str())
                    .execute(&mut *tx).await?;
            }
            let mut payout = None;
            if let Some((payee, amount)) = change.payout {
                payout = sqlx::query_as::<_, Payout>(
                    "INSERT INTO payment_payouts (id, payee_id, amount_cents, currency, state, order_id, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 'pending', $5, $6, $6) ON CONFLICT (order_id) DO NOTHING RETURNING *")
                    .bind(Uuid::now_v7()).bind(payee).bind(amount).bind(&order.currency).bind(id).bind(now)
                    .fetch_optional(&mut *tx).await?;
            }
            // Last: the ledger takes its account locks just before the commit.
            if !change.postings.is_empty() {
                post_in_tx!(tx, &change.postings).await?;
            }
            tx.commit().await?;
            Ok(Changed { before, order, payout })
        }.await);
        result
    }
}

/// 409 `payments.refund_in_progress`.
pub(crate) fn refund_in_progress() -> ServiceError {
    ServiceError::conflict("payments.refund_in_progress", "A refund of this order is under way.")
}

/// 403 `payments.permission_denied`.
pub(crate) fn permission_denied() -> ServiceError {
    ServiceError::forbidden("payments.permission_denied", "You do not have permission to perform this action.")
}
