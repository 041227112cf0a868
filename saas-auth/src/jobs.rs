//! Background work of the accounts module: sending its emails and cleaning up tokens.

use saas_core::jobs::{CronSchedule, JobRegistry, RetryPolicy};
use saas_core::{AppContext, ServiceResult};
use saas_toolkit::Email;

use crate::service::{
    AuthService, CLEAN_UP_JOB, DEACTIVATE_UNVERIFIED_JOB, EmailJob, PASSWORD_RESET_JOB, SEND_EMAIL_JOB,
};

async fn send_email(ctx: AppContext, job: EmailJob) -> ServiceResult<()> {
    let mailer = saas_toolkit::mailer(&ctx)?;
    mailer.send(&Email::text(job.to, job.subject, job.text)).await
}

#[derive(serde::Deserialize)]
struct ResetRequest {
    email: String,
}

async fn send_password_reset(ctx: AppContext, request: ResetRequest) -> ServiceResult<()> {
    AuthService::get(&ctx)?.send_password_reset(&request.email).await
}

async fn clean_up(ctx: AppContext, _: serde_json::Value) -> ServiceResult<()> {
    let removed = AuthService::get(&ctx)?.clean_up_expired().await?;
    tracing::info!(removed, "expired tokens and challenges deleted");
    Ok(())
}

async fn deactivate_unverified(ctx: AppContext, _: serde_json::Value) -> ServiceResult<()> {
    let deactivated = AuthService::get(&ctx)?.deactivate_unverified().await?;
    if deactivated > 0 {
        tracing::info!(deactivated, "accounts left unverified were deactivated");
    }
    Ok(())
}

pub(crate) fn register(jobs: &mut JobRegistry) {
    let mail_policy = RetryPolicy {
        max_attempts: 8,
        initial_backoff: std::time::Duration::from_secs(5),
        max_backoff: std::time::Duration::from_secs(600),
    };
    jobs.register_with(SEND_EMAIL_JOB, mail_policy, send_email);
    jobs.register(CLEAN_UP_JOB, clean_up);
    jobs.register(PASSWORD_RESET_JOB, send_password_reset);
    jobs.register(DEACTIVATE_UNVERIFIED_JOB, deactivate_unverified);
}

pub(crate) fn schedule(cron: &mut CronSchedule) {
    cron.add("auth.clean_up_tokens", "0 17 * * * *", CLEAN_UP_JOB, serde_json::json!({}));
    cron.add("auth.deactivate_unverified", "0 30 3 * * *", DEACTIVATE_UNVERIFIED_JOB, serde_json::json!({}));
}
