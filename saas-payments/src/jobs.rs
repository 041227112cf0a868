//! Background work of payments: webhook processing and payout execution (jobs with
//! retries), and the cron entries — expired escrow holds, pending payouts, stuck webhooks,
//! monthly aggregated payouts and reconciliation (hourly and nightly).

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use saas_core::jobs::{CronSchedule, JobRegistry, RetryPolicy};
use saas_core::{AppContext, ServiceResult};

use crate::service::{EXECUTE_PAYOUT_JOB, PROCESS_WEBHOOK_JOB, PaymentsService};

/// Cron job: releases held escrow orders whose hold expired (every 15 minutes).
pub const EXPIRE_HOLDS_JOB: &str = "payments.expire_holds";
/// Cron job: queues payouts waiting to be executed (every 10 minutes).
pub const QUEUE_PAYOUTS_JOB: &str = "payments.queue_payouts";
/// Cron job: queues stuck and failed webhook events again (every 5 minutes).
pub const RETRY_WEBHOOKS_JOB: &str = "payments.retry_webhooks";
/// Cron job: monthly aggregated payouts of user balances (the 1st, 06:00 UTC).
pub const MONTHLY_PAYOUTS_JOB: &str = "payments.monthly_payouts";
/// Cron job: reconciliation with Stripe over the last `hours` (hourly: 2, nightly: 48).
pub const RECONCILE_JOB: &str = "payments.reconcile";

#[derive(Deserialize)]
struct ProcessWebhook {
    event_id: String,
}

#[derive(Deserialize)]
struct ExecutePayout {
    payout_id: Uuid,
}

#[derive(Deserialize)]
struct Reconcile {
    hours: i64,
}

async fn process_webhook(ctx: AppContext, job: ProcessWebhook) -> ServiceResult<()> {
    PaymentsService::get(&ctx)?.process_webhook(&job.event_id).await
}

async fn execute_payout(ctx: AppContext, job: ExecutePayout) -> ServiceResult<()> {
    PaymentsService::get(&ctx)?.execute_payout(job.payout_id).await.map(|_| ())
}

async fn expire_holds(ctx: AppContext, _: serde_json::Value) -> ServiceResult<()> {
    let released = PaymentsService::get(&ctx)?.release_expired_holds().await?;
    if released > 0 {
        tracing::info!(released, "expired escrow holds released");
    }
    Ok(())
}

async fn queue_payouts(ctx: AppContext, _: serde_json::Value) -> ServiceResult<()> {
    PaymentsService::get(&ctx)?.queue_pending_payouts().await.map(|_| ())
}

async fn retry_webhooks(ctx: AppContext, _: serde_json::Value) -> ServiceResult<()> {
    PaymentsService::get(&ctx)?.retry_webhooks().await.map(|_| ())
}

async fn monthly_payouts(ctx: AppContext, _: serde_json::Value) -> ServiceResult<()> {
    let created = PaymentsService::get(&ctx)?.create_monthly_payouts().await?;
    tracing::info!(created, "monthly payouts created");
    Ok(())
}

async fn reconcile(ctx: AppContext, job: Reconcile) -> ServiceResult<()> {
    let report = PaymentsService::get(&ctx)?.reconcile(chrono::Duration::hours(job.hours)).await?;
    tracing::info!(checked = report.checked, healed = report.healed, flagged = report.flagged, "payments reconciled");
    Ok(())
}

pub(crate) fn register(jobs: &mut JobRegistry) {
    let patient =
        RetryPolicy { max_attempts: 8, initial_backoff: Duration::from_secs(1), max_backoff: Duration::from_secs(300) };
    jobs.register_with(PROCESS_WEBHOOK_JOB, patient, process_webhook);
    jobs.register_with(EXECUTE_PAYOUT_JOB, patient, execute_payout);
    jobs.register(EXPIRE_HOLDS_JOB, expire_holds);
    jobs.register(QUEUE_PAYOUTS_JOB, queue_payouts);
    jobs.register(RETRY_WEBHOOKS_JOB, retry_webhooks);
    jobs.register(MONTHLY_PAYOUTS_JOB, monthly_payouts);
    jobs.register(RECONCILE_JOB, reconcile);
}

pub(crate) fn schedule(cron: &mut CronSchedule) {
    cron.add("payments.expire_holds", "0 */15 * * * *", EXPIRE_HOLDS_JOB, json!({}));
    cron.add("payments.queue_payouts", "0 */10 * * * *", QUEUE_PAYOUTS_JOB, json!({}));
    cron.add("payments.retry_webhooks", "30 */5 * * * *", RETRY_WEBHOOKS_JOB, json!({}));
    cron.add("payments.monthly_payouts", "0 0 6 1 * *", MONTHLY_PAYOUTS_JOB, json!({}));
    cron.add("payments.reconcile_hourly", "0 5 * * * *", RECONCILE_JOB, json!({"hours": 2}));
    cron.add("payments.reconcile_nightly", "0 30 3 * * *", RECONCILE_JOB, json!({"hours": 48}));
}
