//! Subscriptions: creation at Stripe for a price, reads, cancellation, and what Stripe's
//! subscription and invoice events do to them. Every change is one transaction that first
//! locks the subscription's row (an update of it), then decides on the fresh state; an
//! event older than the newest one applied never overwrites it.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use saas_core::{ServiceError, ServiceResult, ValidationErrors, with_pool};
use saas_toolkit::Page;
use saas_toolkit::pagination::{PageParams, TimeCursor};

use super::orders::{OrderChange, permission_denied};
use super::{Actor, PaymentsService, now, record_transition};
use crate::models::{Order, Subscription};
use crate::states::{OrderAction, OrderState, SubscriptionAction, SubscriptionState};
use crate::strategy::OnPaid;

const MAX_PRICE_ID: usize = 255;

/// `POST subscriptions/`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct CreateSubscription {
    /// The Stripe price (`price_…`).
    pub price_id: String,
    /// Who receives the payments (less the platform's fee), if anyone.
    pub payee_id: Option<Uuid>,
}

/// How a change finds its subscription.
#[derive(Debug, Clone, Copy)]
enum SubscriptionKey<'a> {
    /// By our id.
    Id(Uuid),
    /// By the Stripe subscription id.
    Stripe(&'a str),
}

/// A change of one subscription, decided on its locked, fresh row. `None` fields keep
/// what is stored.
#[derive(Debug, Default)]
struct SubscriptionChange {
    action: Option<SubscriptionAction>,
    stripe_status: Option<String>,
    cancel_at_period_end: Option<bool>,
    current_period_end: Option<DateTime<Utc>>,
    event_created: Option<i64>,
}

/// What a change did.
struct SubscriptionChanged {
    before: Subscription,
    subscription: Subscription,
}

impl PaymentsService {
    /// Subscribes the caller to a Stripe price: stored as pending, created at Stripe (for
    /// the caller's Stripe customer, made once), then returned with the client secret of
    /// the first invoice's payment.
    pub async fn create_subscription(&self, user: Uuid, input: CreateSubscription) -> ServiceResult<Subscription> {
        let mut errors = ValidationErrors::default();
        let price_id = input.price_id;
        if price_id.is_empty() {
            errors.add("price_id", "This field may not be blank.");
        } else if price_id.chars().count() > MAX_PRICE_ID {
            errors.add("price_id", format!("Ensure this field has no more than {MAX_PRICE_ID} characters."));
        } else if price_id.chars().any(char::is_whitespace) {
            errors.add("price_id", "A Stripe price id contains no whitespace.");
        }
        if let Some(payee) = input.payee_id {
            let directory = saas_auth::directory(self.ctx())?;
            if payee == user {
                errors.add("payee_id", "The payee cannot be the subscriber.");
            } else if !directory.user(payee).await?.is_some_and(|u| u.is_active) {
                errors.add("payee_id", "No such user.");
            }
        }
        errors.into_result()?;
        let customer = self.stripe_customer(user).await?;
        let id = Uuid::now_v7();
        let now = now();
        with_pool!(self.db(), pool => sqlx::query(
            "INSERT INTO payment_subscriptions (id, user_id, payee_id, price_id, state, stripe_customer_id, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, 'pending', $5, $6, $6)")
            .bind(id).bind(user).bind(input.payee_id).bind(&price_id).bind(&customer).bind(now)
            .execute(pool).await.map(|_| ()))?;
        let mut metadata = vec![("subscription_id", id.to_string()), ("user_id", user.to_string())];
        if let Some(payee) = input.payee_id {
            metadata.push(("payee_id", payee.to_string()));
        }
        let info = self
            .stripe()
            .create_subscription(&customer, &price_id, &metadata, &format!("subscription:{id}:create"))
            .await?;
        let period_end = info.current_period_end.and_then(|secs| DateTime::from_timestamp(secs, 0));
        Ok(with_pool!(self.db(), pool => sqlx::query_as::<_, Subscription>(
            "UPDATE payment_subscriptions SET stripe_subscription_id = $2, stripe_status = $3, cancel_at_period_end = $4, \
             current_period_end = $5, client_secret = $6, updated_at = $7 WHERE id = $1 RETURNING *")
            .bind(id).bind(&info.id).bind(&info.status).bind(info.cancel_at_period_end).bind(period_end)
            .bind(&info.client_secret).bind(now)
            .fetch_one(pool).await)?)
    }

    /// A subscription by id.
    pub async fn subscription(&self, id: Uuid) -> ServiceResult<Option<Subscription>> {
        Ok(with_pool!(self.db(), pool => sqlx::query_as::<_, Subscription>(
            "SELECT * FROM payment_subscriptions WHERE id = $1")
            .bind(id).fetch_optional(pool).await)?)
    }

    /// The caller's subscriptions, newest first.
    pub async fn subscriptions(&self, user: Uuid, page: &PageParams) -> ServiceResult<Page<Subscription>> {
        self.newest_first(
            "SELECT * FROM payment_subscriptions WHERE user_id = $1 \
             AND ($2 IS NULL OR created_at < $2 OR (created_at = $2 AND id < $3)) \
             ORDER BY created_at DESC, id DESC LIMIT $4",
            user,
            page,
            |s: &Subscription| TimeCursor { created_at: s.created_at, id: s.id },
        )
        .await
    }

    /// A subscription the caller may see: the subscriber or staff (404 otherwise).
    pub async fn subscription_for(&self, user: Uuid, id: Uuid) -> ServiceResult<Subscription> {
        let subscription = self.subscription(id).await?.ok_or_else(|| ServiceError::not_found("subscription"))?;
        if subscription.user_id == user || self.is_staff(user).await? {
            Ok(subscription)
        } else {
            Err(ServiceError::not_found("subscription"))
        }
    }

    /// The subscriber (or staff) cancels a subscription at Stripe: at once, or at the end
    /// of the current period (then Stripe's `customer.subscription.deleted` ends it). The
    /// payee gets 403, anyone else 404; a subscription that cannot be cancelled, 409.
    pub async fn cancel_subscription(&self, user: Uuid, id: Uuid, immediately: bool) -> ServiceResult<Subscription> {
        let subscription = self.subscription(id).await?.ok_or_else(|| ServiceError::not_found("subscription"))?;
        if subscription.user_id != user && !self.is_staff(user).await? {
            return Err(if subscription.payee_id == Some(user) {
                permission_denied()
            } else {
                ServiceError::not_found("subscription")
            });
        }
        subscription.state.apply(SubscriptionAction::Cancel)?;
        let stripe_id = subscription
            .stripe_subscription_id
            .as_deref()
            .ok_or_else(|| ServiceError::internal(format!("subscription {id} has no Stripe subscription")))?;
        let when = if immediately { "now" } else { "period_end" };
        let info = self
            .stripe()
            .cancel_subscription(stripe_id, immediately, &format!("subscription:{id}:cancel:{when}"))
            .await?;
        let changed = self
            .change_subscription(SubscriptionKey::Id(id), &Actor::user(user), |subscription| {
                let mut change = SubscriptionChange {
                    stripe_status: Some(info.status).filter(|s| !s.is_empty()),
                    ..SubscriptionChange::default()
                };
                if immediately {
                    // Stripe's `customer.subscription.deleted` may have cancelled it meanwhile.
                    let cancel = SubscriptionAction::Cancel;
                    change.action = subscription.state.apply(cancel).is_ok().then_some(cancel);
                } else {
                    change.cancel_at_period_end = Some(true);
                }
                Ok(Some(change))
            })
            .await?
            .ok_or_else(|| ServiceError::not_found("subscription"))?;
        self.notify_subscription_changed(&changed).await;
        Ok(changed.subscription)
    }

    /// Stripe's `customer.subscription.created/updated/deleted` (`object`: the Stripe
    /// subscription; `event_created`: the event's unix time): mirrors Stripe's fields and
    /// moves the state where Stripe's status says, if that transition is allowed. An event
    /// older than the newest one applied does nothing. `None` for an unknown subscription.
    pub async fn subscription_event(
        &self,
        object: &Value,
        event_created: i64,
        deleted: bool,
        actor: &Actor,
    ) -> ServiceResult<Option<Subscription>> {
        let Some(stripe_id) = object["id"].as_str() else {
            return Ok(None);
        };
        let status = if deleted { "canceled" } else { object["status"].as_str().unwrap_or_default() };
        let cancel_at_period_end = object["cancel_at_period_end"].as_bool();
        let current_period_end = object["current_period_end"]
            .as_i64()
            .or_else(|| object["items"]["data"][0]["current_period_end"].as_i64())
            .and_then(|secs| DateTime::from_timestamp(secs, 0));
        let changed = self
            .change_subscription(SubscriptionKey::Stripe(stripe_id), actor, |subscription| {
                if event_created < subscription.stripe_event_created {
                    return Ok(None);
                }
                Ok(Some(SubscriptionChange {
                    action: action_for_status(subscription.state, status),
                    stripe_status: Some(status.to_owned()).filter(|s| !s.is_empty()),
                    cancel_at_period_end,
                    current_period_end,
                    event_created: Some(event_created),
                }))
            })
            .await?;
        let Some(changed) = changed else {
            return Ok(None);
        };
        self.notify_subscription_changed(&changed).await;
        Ok(Some(changed.subscription))
    }

    /// Stripe's `invoice.paid` for a subscription invoice: the subscription becomes active
    /// (from pending or past due), and the invoice becomes one settled `subscription` order
    /// with the strategy's postings (once per invoice, whatever the number of deliveries).
    /// `None` when it is not the invoice of a known subscription or nothing was paid.
    pub async fn subscription_invoice_paid(&self, invoice: &Value, actor: &Actor) -> ServiceResult<Option<Order>> {
        let Some(stripe_id) = invoice_subscription(invoice) else {
            return Ok(None);
        };
        let changed = self
            .change_subscription(SubscriptionKey::Stripe(stripe_id), actor, |subscription| {
                let action = match subscription.state {
                    SubscriptionState::Pending => SubscriptionAction::Activate,
                    SubscriptionState::PastDue => SubscriptionAction::Reactivate,
                    _ => return Ok(None),
                };
                Ok(subscription
                    .state
                    .apply(action)
                    .is_ok()
                    .then(|| SubscriptionChange { action: Some(action), ..SubscriptionChange::default() }))
            })
            .await?;
        let Some(changed) = changed else {
            return Ok(None);
        };
        self.notify_subscription_changed(&changed).await;
        let amount = invoice["amount_paid"].as_i64().unwrap_or(0);
        let Some(invoice_id) = invoice["id"].as_str().filter(|_| amount > 0) else {
            return Ok(None);
        };
        let order = self.invoice_order(&changed.subscription, invoice, invoice_id, amount).await?;
        let strategy = self.strategy_of(&order.strategy_type)?;
        let policy = self.policy().clone();
        let changed = self
            .change_order(order.id, actor, |order| {
                if order.state != OrderState::Draft {
                    return Ok(None);
                }
                let OnPaid::Settle(postings) = strategy.on_paid(order, &policy)? else {
                    return Err(ServiceError::internal("the subscription strategy must settle paid invoices"));
                };
                Ok(Some(OrderChange {
                    actions: vec![OrderAction::Submit, OrderAction::Process, OrderAction::Capture, OrderAction::Settle],
                    postings,
                    ..OrderChange::default()
                }))
            })
            .await?;
        if changed.order.state != changed.before.state
            && let Some(events) = self.events()
        {
            events.payment_succeeded(self.ctx(), &changed.order).await;
        }
        Ok(Some(changed.order))
    }

    /// Stripe's `invoice.payment_failed` for a subscription invoice: an active subscription
    /// becomes past due. `None` when it is not the invoice of a known subscription.
    pub async fn subscription_invoice_failed(
        &self,
        invoice: &Value,
        actor: &Actor,
    ) -> ServiceResult<Option<Subscription>> {
        let Some(stripe_id) = invoice_subscription(invoice) else {
            return Ok(None);
        };
        let changed = self
            .change_subscription(SubscriptionKey::Stripe(stripe_id), actor, |subscription| {
                let action = SubscriptionAction::MarkPastDue;
                Ok(subscription
                    .state
                    .apply(action)
                    .is_ok()
                    .then(|| SubscriptionChange { action: Some(action), ..SubscriptionChange::default() }))
            })
            .await?;
        let Some(changed) = changed else {
            return Ok(None);
        };
        self.notify_subscription_changed(&changed).await;
        Ok(Some(changed.subscription))
    }

    /// Reconciliation: reads the subscription at Stripe and applies it as an event of now.
    /// A subscription never created at Stripe is returned as stored.
    pub async fn sync_subscription(&self, id: Uuid) -> ServiceResult<Subscription> {
        let subscription = self.subscription(id).await?.ok_or_else(|| ServiceError::not_found("subscription"))?;
        let Some(stripe_id) = subscription.stripe_subscription_id.clone() else {
            return Ok(subscription);
        };
        let info = self.stripe().retrieve_subscription(&stripe_id).await?;
        let object = json!({
            "id": stripe_id,
            "status": info.status,
            "cancel_at_period_end": info.cancel_at_period_end,
            "current_period_end": info.current_period_end,
        });
        let synced =
            self.subscription_event(&object, now().timestamp(), false, &Actor::system("reconciliation")).await?;
        Ok(synced.unwrap_or(subscription))
    }

    /// The user's Stripe customer, created once: racing calls converge on one stored row,
    /// and the idempotency key makes Stripe return the same customer.
    async fn stripe_customer(&self, user: Uuid) -> ServiceResult<String> {
        if let Some(customer) = self.stored_customer(user).await? {
            return Ok(customer);
        }
        let directory = saas_auth::directory(self.ctx())?;
        let email = directory.user(user).await?.ok_or_else(|| ServiceError::not_found("user"))?.email;
        let customer = self
            .stripe()
            .create_customer(&email, &[("user_id", user.to_string())], &format!("customer:{user}"))
            .await?;
        with_pool!(self.db(), pool => sqlx::query(
            "INSERT INTO payment_customers (user_id, stripe_customer_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO NOTHING")
            .bind(user).bind(&customer).bind(now())
            .execute(pool).await.map(|_| ()))?;
        self.stored_customer(user).await?.ok_or_else(|| ServiceError::internal("the Stripe customer was not stored"))
    }

    /// The user's stored Stripe customer id.
    async fn stored_customer(&self, user: Uuid) -> ServiceResult<Option<String>> {
        Ok(with_pool!(self.db(), pool => sqlx::query_scalar::<_, String>(
            "SELECT stripe_customer_id FROM payment_customers WHERE user_id = $1")
            .bind(user).fetch_optional(pool).await)?)
    }

    /// The order of a paid invoice, created (as a draft) on its first delivery only.
    async fn invoice_order(
        &self,
        subscription: &Subscription,
        invoice: &Value,
        invoice_id: &str,
        amount: i64,
    ) -> ServiceResult<Order> {
        let strategy = self.strategy_of("subscription")?;
        let fee = strategy.fee(amount, self.policy());
        if !(0..=amount).contains(&fee) {
            return Err(ServiceError::internal(format!("strategy {} computed a fee of {fee}", strategy.name())));
        }
        let currency = invoice["currency"].as_str().unwrap_or("usd").to_ascii_lowercase();
        with_pool!(self.db(), pool => sqlx::query(
            "INSERT INTO payment_orders (id, payer_id, payee_id, strategy_type, state, amount_cents, platform_fee_cents, \
             currency, description, subscription_id, stripe_invoice_id, metadata, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'draft', $5, $6, $7, 'Subscription invoice', $8, $9, '{}', $10, $10) \
             ON CONFLICT (stripe_invoice_id) DO NOTHING")
            .bind(Uuid::now_v7()).bind(subscription.user_id).bind(subscription.payee_id).bind(strategy.name())
            .bind(amount).bind(fee).bind(&currency).bind(subscription.id).bind(invoice_id).bind(now())
            .execute(pool).await.map(|_| ()))?;
        let order: Option<Order> = with_pool!(self.db(), pool => sqlx::query_as(
            "SELECT * FROM payment_orders WHERE stripe_invoice_id = $1")
            .bind(invoice_id).fetch_optional(pool).await)?;
        order.ok_or_else(|| ServiceError::internal(format!("the order of invoice {invoice_id} was not stored")))
    }

    /// Changes one subscription in one transaction: locks its row, lets `plan` decide on
    /// the fresh state (`None`: nothing to do), checks and records the transition, and
    /// stores the state and the mirrored Stripe fields. `None` for an unknown subscription.
    async fn change_subscription<F>(
        &self,
        key: SubscriptionKey<'_>,
        actor: &Actor,
        plan: F,
    ) -> ServiceResult<Option<SubscriptionChanged>>
    where
        F: FnOnce(&Subscription) -> ServiceResult<Option<SubscriptionChange>>,
    {
        let now = now();
        let result: ServiceResult<Option<SubscriptionChanged>> = with_pool!(self.db(), pool => async {
            let mut tx = pool.begin().await?;
            let before: Option<Subscription> = match key {
                SubscriptionKey::Id(id) => sqlx::query_as(
                    "UPDATE payment_subscriptions SET updated_at = updated_at WHERE id = $1 RETURNING *")
                    .bind(id).fetch_optional(&mut *tx).await?,
                SubscriptionKey::Stripe(stripe_id) => sqlx::query_as(
                    "UPDATE payment_subscriptions SET updated_at = updated_at WHERE stripe_subscription_id = $1 RETURNING *")
                    .bind(stripe_id).fetch_optional(&mut *tx).await?,
            };
            let Some(before) = before else {
                tx.rollback().await?;
                return Ok(None);
            };
            let Some(change) = plan(&before)? else {
                tx.rollback().await?;
                return Ok(Some(SubscriptionChanged { subscription: before.clone(), before }));
            };
            let mut state = before.state;
            if let Some(action) = change.action {
                let next = state.apply(action)?;
                record_transition!(tx, "subscription", before.id, state, next, action, actor.user_id, &actor.reason, now)
                    .await?;
                state = next;
            }
            let event_created = change.event_created.unwrap_or(0).max(before.stripe_event_created);
            let subscription: Subscription = sqlx::query_as(
                "UPDATE payment_subscriptions SET state = $2, stripe_status = COALESCE($3, stripe_status), \
                 cancel_at_period_end = COALESCE($4, cancel_at_period_end), \
                 current_period_end = COALESCE($5, current_period_end), stripe_event_created = $6, updated_at = $7 \
                 WHERE id = $1 RETURNING *")
                .bind(before.id).bind(state.as_str()).bind(change.stripe_status).bind(change.cancel_at_period_end)
                .bind(change.current_period_end).bind(event_created).bind(now)
                .fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(Some(SubscriptionChanged { before, subscription }))
        }.await);
        result
    }

    /// Tells the app's event hook, when the state changed.
    async fn notify_subscription_changed(&self, changed: &SubscriptionChanged) {
        if changed.subscription.state != changed.before.state
            && let Some(events) = self.events()
        {
            events.subscription_changed(self.ctx(), &changed.subscription).await;
        }
    }
}

/// The transition Stripe's status word asks of a subscription in `state`, when that
/// transition is allowed there: an out-of-order event never moves a state backwards.
fn action_for_status(state: SubscriptionState, status: &str) -> Option<SubscriptionAction> {
    use SubscriptionAction as A;
    let action = match status {
        "active" | "trialing" if state == SubscriptionState::PastDue => A::Reactivate,
        "active" | "trialing" => A::Activate,
        "past_due" | "unpaid" => A::MarkPastDue,
        "canceled" | "incomplete_expired" => A::Cancel,
        _ => return None,
    };
    state.apply(action).is_ok().then_some(action)
}

/// The Stripe subscription an invoice belongs to (new and old API shapes), if any.
fn invoice_subscription(invoice: &Value) -> Option<&str> {
    fn id_of(value: &Value) -> Option<&str> {
        value.as_str().or_else(|| value["id"].as_str())
    }
    id_of(&invoice["parent"]["subscription_details"]["subscription"]).or_else(|| id_of(&invoice["subscription"]))
}
