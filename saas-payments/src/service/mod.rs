//! The payments service: every rule of orders, escrow, refunds, payouts, subscriptions and
//! Connect, shared by the routes, the webhook jobs, the cron entries and the admin.

mod connect;
mod orders;
mod payouts;
mod reconcile;
mod refunds;
mod subscriptions;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use saas_core::{AppContext, Db, ServiceError, ServiceResult, with_pool};
use saas_toolkit::Page;
use saas_toolkit::pagination::{PageParams, TimeCursor};

use crate::events::PaymentEvents;
use crate::ledger::Ledger;
use crate::models::Transition;
use crate::strategy::{PaymentStrategy, Policy};
use crate::stripe::StripeApi;

pub use connect::{ConnectStatus, OnboardingLink};
pub use orders::CreateOrder;
pub(crate) use orders::permission_denied;
pub use reconcile::ReconciliationReport;
pub use refunds::RefundRequest;
pub use subscriptions::CreateSubscription;

/// Job: processes one stored webhook event (`{"event_id"}`).
pub const PROCESS_WEBHOOK_JOB: &str = "payments.process_webhook";
/// Job: executes one payout (`{"payout_id"}`): marks it processing, then creates the transfer.
pub const EXECUTE_PAYOUT_JOB: &str = "payments.execute_payout";

/// The payments service; cheap to clone. Installed in the [`AppContext`] by the module.
#[derive(Clone)]
pub struct PaymentsService {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: AppContext,
    stripe: StripeApi,
    policy: Policy,
    strategies: HashMap<String, Arc<dyn PaymentStrategy>>,
    events: Option<Arc<dyn PaymentEvents>>,
    webhook_secret: Option<String>,
}

impl PaymentsService {
    /// A service on `ctx` with these strategies (by name) and event hook.
    pub fn new(
        ctx: &AppContext,
        strategies: Vec<Arc<dyn PaymentStrategy>>,
        events: Option<Arc<dyn PaymentEvents>>,
    ) -> ServiceResult<Self> {
        let config = ctx.config();
        let policy = Policy {
            fee_percent: config.var_or("PLATFORM_FEE_PERCENT", 15u32)?,
            hold_days: config.var_or("ESCROW_DEFAULT_HOLD_DURATION_DAYS", 42i64)?,
            max_hold_days: config.var_or("ESCROW_MAX_HOLD_DURATION_DAYS", 90i64)?,
            minimum_payout_cents: config.var_or("MINIMUM_PAYOUT_AMOUNT_CENTS", 1000i64)?,
            frontend_url: config.var_or("FRONTEND_URL", "http://localhost:3000".to_owned())?,
        };
        if policy.hold_days < 0 || policy.hold_days > policy.max_hold_days {
            return Err(ServiceError::new(
                saas_core::ErrorKind::Internal,
                "config.invalid",
                "ESCROW_DEFAULT_HOLD_DURATION_DAYS must be between 0 and ESCROW_MAX_HOLD_DURATION_DAYS.",
            ));
        }
        if policy.fee_percent > 100 {
            return Err(ServiceError::new(
                saas_core::ErrorKind::Internal,
                "config.invalid",
                "PLATFORM_FEE_PERCENT must be between 0 and 100.",
            ));
        }
        let secret_key = config.var("STRIPE_SECRET_KEY").unwrap_or("sk_test_unset");
        let api_base = config.var("STRIPE_API_BASE").unwrap_or("https://api.stripe.com");
        let stripe = StripeApi::new(secret_key, api_base)?;
        let webhook_secret = config.var("STRIPE_WEBHOOK_SECRET").filter(|s| !s.is_empty()).map(str::to_owned);
        let strategies = strategies.into_iter().map(|s| (s.name().to_owned(), s)).collect();
        Ok(Self { inner: Arc::new(Inner { ctx: ctx.clone(), stripe, policy, strategies, events, webhook_secret }) })
    }

    /// The service installed in `ctx` (500 if the payments module is not mounted).
    pub fn get(ctx: &AppContext) -> ServiceResult<Self> {
        ctx.get::<Self>().ok_or_else(|| ServiceError::internal("the payments module is not installed"))
    }

    /// The app context.
    pub fn ctx(&self) -> &AppContext {
        &self.inner.ctx
    }

    fn db(&self) -> &Db {
        self.inner.ctx.db()
    }

    /// The ledger.
    pub fn ledger(&self) -> Ledger {
        Ledger::new(self.db().clone())
    }

    /// The Stripe client.
    pub fn stripe(&self) -> &StripeApi {
        &self.inner.stripe
    }

    /// The payments policy.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The strategy named `name`.
    pub fn strategy(&self, name: &str) -> Option<&Arc<dyn PaymentStrategy>> {
        self.inner.strategies.get(name)
    }

    fn strategy_of(&self, name: &str) -> ServiceResult<Arc<dyn PaymentStrategy>> {
        self.strategy(name)
            .cloned()
            .ok_or_else(|| ServiceError::internal(format!("no strategy {name:?} is registered")))
    }

    pub(crate) fn webhook_secret(&self) -> Option<&str> {
        self.inner.webhook_secret.as_deref()
    }

    /// The app's event hook, if any (called after a change is committed).
    fn events(&self) -> Option<&Arc<dyn PaymentEvents>> {
        self.inner.events.as_ref()
    }

    /// Whether `user` is staff.
    pub(crate) async fn is_staff(&self, user: Uuid) -> ServiceResult<bool> {
        let directory = saas_auth::directory(&self.inner.ctx)?;
        Ok(directory.user(user).await?.is_some_and(|u| u.is_staff && u.is_active))
    }

    /// Every transition of a payment object, oldest first.
    pub async fn history(&self, object_id: Uuid) -> ServiceResult<Vec<Transition>> {
        Ok(with_pool!(self.db(), pool => sqlx::query_as::<_, Transition>(
            "SELECT object_type, object_id, from_state, to_state, action, actor_id, reason, created_at \
             FROM payment_transitions WHERE object_id = $1 ORDER BY created_at, id")
            .bind(object_id).fetch_all(pool).await)?)
    }

    /// One page of `sql` (rows of one owner, newest first: `$1` the owner, `$2`/`$3` the
    /// cursor's time and id, `$4` the limit + 1).
    async fn newest_first<T>(
        &self,
        sql: &'static str,
        owner: Uuid,
        page: &PageParams,
        created_at: fn(&T) -> TimeCursor,
    ) -> ServiceResult<Page<T>>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        let limit = page.limit()?;
        let after: Option<TimeCursor> = page.position()?;
        let (before_time, before_id) = after.map_or((None, None), |c| (Some(c.created_at), Some(c.id)));
        let rows: Vec<T> = with_pool!(self.db(), pool => sqlx::query_as(sql)
            .bind(owner).bind(before_time).bind(before_id).bind(i64::from(limit) + 1)
            .fetch_all(pool).await)?;
        Ok(Page::from_rows(rows, limit, created_at))
    }

    /// Queues a job, logging (not failing) when the queue is unavailable: cron picks the
    /// work up again.
    pub(crate) async fn enqueue(&self, job: &str, payload: serde_json::Value) {
        if let Err(err) = self.inner.ctx.jobs().enqueue(job, &payload).await {
            tracing::warn!(job, error = %err, "could not queue a payments job; the cron entry will pick it up");
        }
    }
}

/// Records a transition inside an open transaction.
macro_rules! record_transition {
    ($tx:expr, $object:expr, $id:expr, $from:expr, $to:expr, $action:expr, $actor:expr, $reason:expr, $now:expr) => {
        ::sqlx::query(
            "INSERT INTO payment_transitions (id, object_type, object_id, from_state, to_state, action, actor_id, reason, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(::uuid::Uuid::now_v7())
        .bind($object)
        .bind($id)
        .bind($from.as_str())
        .bind($to.as_str())
        .bind($action.as_str())
        .bind($actor)
        .bind($reason)
        .bind($now)
        .execute(&mut *$tx)
    };
}
pub(crate) use record_transition;

/// Who did something and why, for the transition history.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// The person, if a person did it.
    pub user_id: Option<Uuid>,
    /// Why (`stripe:evt_…`, `cron:expire_holds`, `api`…).
    pub reason: String,
}

impl Actor {
    /// A person acting through the API.
    pub fn user(user_id: Uuid) -> Self {
        Self { user_id: Some(user_id), reason: "api".to_owned() }
    }

    /// A staff member acting in the admin site.
    pub fn staff(user_id: Uuid) -> Self {
        Self { user_id: Some(user_id), reason: "admin".to_owned() }
    }

    /// The system, for `reason`.
    pub fn system(reason: impl Into<String>) -> Self {
        Self { user_id: None, reason: reason.into() }
    }
}

fn now() -> DateTime<Utc> {
    Utc::now()
}
