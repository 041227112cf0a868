//! Background work of the accounts module: sending its emails and cleaning up tokens.

use saas_core::jobs::{CronSchedule, JobRegistry, RetryPolicy};
use saas_core::{AppContext, ServiceResult};
use saas_toolkit::Email;

use crate::service::{
    AuthService, CLEAN_UP_JOB, DEACTIVATE_UNVERIFIED_JOB, EmailJob, PASSWORD_RESET_JOB, SEND_EMAIL_JOB,
};

/// How long a sent mail is remembered, so that a re-run of its job does not send it again.
const SENT_MAIL_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);
/// How long one attempt holds a mail: longer than a send takes (the SMTP timeout is 10 s a
/// step), short enough that the mail of an attempt that died goes out soon after.
const SENDING_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// Sends the mail once. Each mail is claimed in the shared cache while an attempt sends it
/// and marked once sent, so a job run twice (re-run after its worker died with the mail
/// out, or handed to two workers at once) neither sends it again nor races the other run.
async fn send_email(ctx: AppContext, job: EmailJob) -> ServiceResult<()> {
    let Some(id) = job.id else {
        return saas_toolkit::mailer(&ctx)?.send(&Email::text(job.to, job.subject, job.text)).await;
    };
    let key = format!("auth:mail:{id}");
    if !ctx.cache().set_if_absent(&key, b"sending".to_vec().into(), SENDING_TTL).await? {
        if ctx.cache().get(&key).await?.is_some_and(|state| state.as_ref() == b"sent") {
            tracing::info!(mail = %id, "mail already sent; not sending it again");
            return Ok(());
        }
        return Err(saas_core::ServiceError::unavailable("mail.in_progress", "Another attempt is sending this mail."));
    }
    // The window left: a worker killed after the server accepted the mail and before the mark
    // below. The retry then sends it again, with the same Message-ID, by which some receivers
    // drop the copy.
    let email = Email::text(job.to, job.subject, job.text).with_message_id(id.to_string());
    let sent = async { saas_toolkit::mailer(&ctx)?.send(&email).await }.await;
    match sent {
        Ok(()) => {
            if let Err(err) = ctx.cache().set(&key, b"sent".to_vec().into(), Some(SENT_MAIL_TTL)).await {
                // The mail is out: a retry would send it again, so the job succeeds.
                tracing::warn!(mail = %id, error = %err, "the sent mail could not be marked");
            }
            Ok(())
        }
        Err(err) => {
            let _ = ctx.cache().delete(&key).await;
            Err(err)
        }
    }
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
