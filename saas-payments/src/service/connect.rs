//! Stripe Connect: each payee's Express account (created once per user), its onboarding
//! link and status, and what Stripe's `account.updated` does: the status follows the
//! account's requirements, and payouts waiting for the account go out once it can receive
//! them.

use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use saas_core::{ServiceError, ServiceResult, with_pool};

use super::{Actor, EXECUTE_PAYOUT_JOB, PaymentsService, now};
use crate::models::ConnectedAccount;
use crate::states::OnboardingStatus;

/// `GET connect/status/`: how far the caller's Connect account is.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConnectStatus {
    /// How far onboarding is (`not_started` without an account).
    pub onboarding_status: OnboardingStatus,
    /// The account can take charges.
    pub charges_enabled: bool,
    /// The account can receive payouts.
    pub payouts_enabled: bool,
}

/// `POST connect/onboarding/`: where the caller continues onboarding at Stripe.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OnboardingLink {
    /// The Stripe account link (single use, short-lived).
    pub url: String,
}

impl PaymentsService {
    /// The user's Connect account, if one was created.
    pub async fn connected_account(&self, user: Uuid) -> ServiceResult<Option<ConnectedAccount>> {
        Ok(with_pool!(self.db(), pool => sqlx::query_as::<_, ConnectedAccount>(
            "SELECT * FROM payment_connected_accounts WHERE user_id = $1")
            .bind(user).fetch_optional(pool).await)?)
    }

    /// Creates the user's Connect Express account (once) and returns a fresh onboarding
    /// link that comes back to `FRONTEND_URL/connect/return` (or `/connect/refresh`).
    pub async fn start_onboarding(&self, user: Uuid) -> ServiceResult<OnboardingLink> {
        let account = match self.connected_account(user).await? {
            Some(account) => account,
            None => self.create_connected_account(user).await?,
        };
        let base = self.policy().frontend_url.trim_end_matches('/');
        let (refresh_url, return_url) = (format!("{base}/connect/refresh"), format!("{base}/connect/return"));
        let url = self.stripe().create_account_link(&account.stripe_account_id, &refresh_url, &return_url).await?;
        Ok(OnboardingLink { url })
    }

    /// The user's onboarding status (`not_started`, nothing enabled, without an account).
    pub async fn connect_status(&self, user: Uuid) -> ServiceResult<ConnectStatus> {
        Ok(match self.connected_account(user).await? {
            Some(account) => ConnectStatus {
                onboarding_status: account.onboarding_status,
                charges_enabled: account.charges_enabled,
                payouts_enabled: account.payouts_enabled,
            },
            None => ConnectStatus {
                onboarding_status: OnboardingStatus::NotStarted,
                charges_enabled: false,
                payouts_enabled: false,
            },
        })
    }

    /// Stripe's `account.updated` (`account`: the Stripe account): the status follows its
    /// requirements, charges and payouts enabled are copied, and once payouts are enabled
    /// the user's pending and scheduled payouts are queued. `None` for an unknown account.
    pub async fn account_updated(&self, account: &Value, actor: &Actor) -> ServiceResult<Option<ConnectedAccount>> {
        let Some(stripe_id) = account["id"].as_str() else {
            return Ok(None);
        };
        let requirements = &account["requirements"];
        let due = |key: &str| requirements[key].as_array().map_or(0, Vec::len);
        let status = account_status(requirements["disabled_reason"].as_str(), due("currently_due"), due("past_due"));
        let charges_enabled = account["charges_enabled"].as_bool().unwrap_or(false);
        let payouts_enabled = account["payouts_enabled"].as_bool().unwrap_or(false);
        let updated: Option<ConnectedAccount> = with_pool!(self.db(), pool => sqlx::query_as(
            "UPDATE payment_connected_accounts SET onboarding_status = $2, charges_enabled = $3, payouts_enabled = $4, \
             updated_at = $5 WHERE stripe_account_id = $1 RETURNING *")
            .bind(stripe_id).bind(status.as_str()).bind(charges_enabled).bind(payouts_enabled).bind(now())
            .fetch_optional(pool).await)?;
        let Some(updated) = updated else {
            return Ok(None);
        };
        tracing::info!(
            account = stripe_id,
            status = %status,
            payouts_enabled,
            reason = %actor.reason,
            "Connect account updated"
        );
        if updated.payouts_enabled {
            self.queue_waiting_payouts(updated.user_id).await?;
        }
        Ok(Some(updated))
    }

    /// Reconciliation: reads the user's account at Stripe and applies it like
    /// `account.updated`. `None` when the user has no account.
    pub async fn sync_account(&self, user: Uuid) -> ServiceResult<Option<ConnectedAccount>> {
        let Some(account) = self.connected_account(user).await? else {
            return Ok(None);
        };
        let info = self.stripe().retrieve_account(&account.stripe_account_id).await?;
        let object = json!({
            "id": account.stripe_account_id,
            "charges_enabled": info.charges_enabled,
            "payouts_enabled": info.payouts_enabled,
            "details_submitted": info.details_submitted,
            "requirements": {
                "disabled_reason": info.disabled_reason,
                "currently_due": info.currently_due,
                "past_due": info.past_due,
            },
        });
        self.account_updated(&object, &Actor::system("reconciliation")).await
    }

    /// Creates the user's Express account at Stripe and stores it: racing calls converge on
    /// one stored row, and the idempotency key makes Stripe return the same account.
    async fn create_connected_account(&self, user: Uuid) -> ServiceResult<ConnectedAccount> {
        let directory = saas_auth::directory(self.ctx())?;
        let email = directory.user(user).await?.ok_or_else(|| ServiceError::not_found("user"))?.email;
        let info = self
            .stripe()
            .create_express_account(&email, &[("user_id", user.to_string())], &format!("connect:{user}:account"))
            .await?;
        let status = account_status(info.disabled_reason.as_deref(), info.currently_due.len(), info.past_due.len());
        with_pool!(self.db(), pool => sqlx::query(
            "INSERT INTO payment_connected_accounts (user_id, stripe_account_id, onboarding_status, charges_enabled, \
             payouts_enabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (user_id) DO NOTHING")
            .bind(user).bind(&info.id).bind(status.as_str()).bind(info.charges_enabled).bind(info.payouts_enabled)
            .bind(now())
            .execute(pool).await.map(|_| ()))?;
        self.connected_account(user).await?.ok_or_else(|| ServiceError::internal("the Connect account was not stored"))
    }

    /// Queues the execution of every pending or scheduled payout to `user`.
    async fn queue_waiting_payouts(&self, user: Uuid) -> ServiceResult<()> {
        let ids: Vec<Uuid> = with_pool!(self.db(), pool => sqlx::query_scalar(
            "SELECT id FROM payment_payouts WHERE payee_id = $1 AND state IN ('pending', 'scheduled')")
            .bind(user).fetch_all(pool).await)?;
        for id in ids {
            self.enqueue(EXECUTE_PAYOUT_JOB, json!({ "payout_id": id })).await;
        }
        Ok(())
    }
}

/// The onboarding status of an existing account from its requirements: never
/// `not_started`, since the account exists.
fn account_status(disabled_reason: Option<&str>, currently_due: usize, past_due: usize) -> OnboardingStatus {
    match OnboardingStatus::from_requirements(disabled_reason, currently_due, past_due) {
        OnboardingStatus::NotStarted => OnboardingStatus::InProgress,
        status => status,
    }
}
