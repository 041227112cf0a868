//! Background work of notifications: deliveries, the purge of old read notifications,
//! and another round for failed deliveries.

use std::time::Duration;

use saas_core::jobs::{CronSchedule, JobRegistry, RetryPolicy};
use saas_core::{AppContext, ServiceResult};

use crate::service::{DELIVER_JOB, NotifyService};

/// Cron job: deletes read notifications older than `NOTIFY_PURGE_READ_AFTER_DAYS` (90).
pub const PURGE_READ_JOB: &str = "notify.purge_read";
/// Cron job: queues failed deliveries again while they have fewer than
/// `NOTIFY_MAX_DELIVERY_ATTEMPTS` (10) attempts.
pub const RETRY_FAILED_JOB: &str = "notify.retry_failed";

#[derive(serde::Deserialize)]
struct Deliver {
    delivery_id: uuid::Uuid,
}

async fn deliver(ctx: AppContext, job: Deliver) -> ServiceResult<()> {
    NotifyService::get(&ctx)?.deliver(job.delivery_id).await
}

async fn purge_read(ctx: AppContext, _: serde_json::Value) -> ServiceResult<()> {
    let days = ctx.config().var_or("NOTIFY_PURGE_READ_AFTER_DAYS", 90i64)?;
    let purged = NotifyService::get(&ctx)?.purge_read(chrono::Duration::days(days)).await?;
    tracing::info!(purged, "read notifications purged");
    Ok(())
}

async fn retry_failed(ctx: AppContext, _: serde_json::Value) -> ServiceResult<()> {
    let max_attempts = ctx.config().var_or("NOTIFY_MAX_DELIVERY_ATTEMPTS", 10i32)?;
    let queued = NotifyService::get(&ctx)?.retry_failed(chrono::Duration::minutes(10), max_attempts).await?;
    if queued > 0 {
        tracing::info!(queued, "failed deliveries queued again");
    }
    Ok(())
}

pub(crate) fn register(jobs: &mut JobRegistry) {
    let policy =
        RetryPolicy { max_attempts: 5, initial_backoff: Duration::from_secs(1), max_backoff: Duration::from_secs(300) };
    jobs.register_with(DELIVER_JOB, policy, deliver);
    jobs.register(PURGE_READ_JOB, purge_read);
    jobs.register(RETRY_FAILED_JOB, retry_failed);
}

pub(crate) fn schedule(cron: &mut CronSchedule) {
    cron.add("notify.purge_read", "0 10 4 * * *", PURGE_READ_JOB, serde_json::json!({}));
    cron.add("notify.retry_failed", "0 */15 * * * *", RETRY_FAILED_JOB, serde_json::json!({}));
}
