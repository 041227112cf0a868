//! Cron entries: each tick enqueues a job keyed by the entry and the tick's time, so
//! several schedulers (one per node) enqueue it once.

use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use apalis_cron::timezone::Utc;
use apalis_cron::{CronScheduler, Tick};
use futures::{Stream, StreamExt};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::EnqueueOptions;
use crate::context::AppContext;
use crate::error::{ServiceError, ServiceResult};

/// One periodic entry.
#[derive(Debug, Clone)]
pub struct CronEntry {
    /// A unique name (`payments.expire_escrow_holds`).
    pub name: String,
    /// When it fires (UTC).
    pub schedule: ::cron::Schedule,
    /// The job enqueued on each tick.
    pub job: String,
    /// That job's payload.
    pub payload: Value,
}

/// The cron entries of an app.
#[derive(Debug, Clone, Default)]
pub struct CronSchedule {
    entries: Vec<CronEntry>,
    errors: Vec<String>,
}

impl CronSchedule {
    /// Adds an entry firing on `expression` (six fields, seconds first: `0 */15 * * * *`,
    /// or `@hourly`, `@daily`…) that enqueues `job` with `payload`. A bad expression makes
    /// the app refuse to build, naming the entry.
    pub fn add(&mut self, name: &str, expression: &str, job: &str, payload: Value) -> &mut Self {
        match ::cron::Schedule::from_str(expression) {
            Ok(schedule) => {
                self.entries.push(CronEntry { name: name.to_owned(), schedule, job: job.to_owned(), payload })
            }
            Err(err) => self.errors.push(format!("cron entry {name}: invalid expression {expression:?}: {err}")),
        }
        self
    }

    /// Applies the operator's overrides from the configuration: `CRON_<NAME>` (the entry's
    /// name upper-cased, every other character `_`: `CRON_PAYMENTS_EXPIRE_HOLDS`) replaces
    /// the entry's expression, or turns it off with `off`. A bad override makes the app
    /// refuse to build, naming the variable.
    pub fn apply_overrides(&mut self, config: &crate::config::Config) {
        let mut kept = Vec::with_capacity(self.entries.len());
        for mut entry in std::mem::take(&mut self.entries) {
            let variable = override_variable(&entry.name);
            match config.var(&variable).map(str::trim) {
                None | Some("") => kept.push(entry),
                Some(value) if value.eq_ignore_ascii_case("off") => {
                    tracing::info!(entry = %entry.name, "cron entry turned off by {variable}");
                }
                Some(value) => match ::cron::Schedule::from_str(value) {
                    Ok(schedule) => {
                        entry.schedule = schedule;
                        kept.push(entry);
                    }
                    Err(err) => self.errors.push(format!("{variable}: invalid expression {value:?}: {err}")),
                },
            }
        }
        self.entries = kept;
    }

    /// The valid entries.
    pub fn entries(&self) -> &[CronEntry] {
        &self.entries
    }

    /// `Err` naming every invalid entry.
    pub fn validate(&self) -> ServiceResult<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::new(crate::error::ErrorKind::Internal, "config.invalid", self.errors.join("; ")))
        }
    }
}

/// The variable overriding an entry: `CRON_` and its name upper-cased, every character
/// that is not a letter or digit replaced by `_`.
pub fn override_variable(name: &str) -> String {
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("CRON_{name}")
}

/// Starts the scheduler; it runs until `token` is cancelled.
pub fn spawn_scheduler(ctx: &AppContext, cron: &Arc<CronSchedule>, token: CancellationToken) -> JoinHandle<()> {
    let tasks: Vec<_> =
        cron.entries().iter().map(|entry| tokio::spawn(fire(ctx.clone(), entry.clone(), token.clone()))).collect();
    tokio::spawn(async move {
        for task in tasks {
            let _ = task.await;
        }
    })
}

async fn fire(ctx: AppContext, entry: CronEntry, token: CancellationToken) {
    let mut ticks = Ticks::new(&entry.name, &entry.schedule);
    loop {
        let tick = tokio::select! {
            () = token.cancelled() => return,
            tick = ticks.next() => tick,
        };
        let Some(tick) = tick else { return };
        let key = format!("cron:{}:{tick}", entry.name);
        let options = EnqueueOptions { delay: None, unique_key: Some(key) };
        match ctx.jobs().enqueue_with(&entry.job, &entry.payload, options).await {
            Ok(()) => tracing::debug!(entry = %entry.name, tick, "cron entry fired"),
            Err(err) => tracing::warn!(entry = %entry.name, error = %err, "cron entry could not enqueue its job"),
        }
    }
}

/// The ticks of a schedule, as Unix seconds. A tick that passes while the previous one is
/// being handled (a slow enqueue, a stalled process) is skipped: apalis-cron's stream then
/// fails on that tick at every poll, so it is started again from now.
struct Ticks {
    entry: String,
    schedule: ::cron::Schedule,
    stream: Pin<Box<dyn Stream<Item = Result<Tick<Utc>, apalis_cron::Error>> + Send>>,
}

impl Ticks {
    fn new(entry: &str, schedule: &::cron::Schedule) -> Self {
        let stream = Box::pin(CronScheduler::new(schedule.clone()).into_stream());
        Self { entry: entry.to_owned(), schedule: schedule.clone(), stream }
    }

    /// The next tick, once it is due; `None` when the schedule has no more.
    async fn next(&mut self) -> Option<u64> {
        loop {
            match self.stream.next().await? {
                Ok(tick) => return Some(tick.get_timestamp()),
                Err(err) => {
                    tracing::warn!(entry = %self.entry, error = %err, "a cron tick passed before it could be awaited; skipped");
                    *self = Self::new(&self.entry, &self.schedule);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_tick_missed_while_the_last_was_handled_is_skipped_and_the_next_one_fires() {
        let schedule = ::cron::Schedule::from_str("* * * * * *").unwrap();
        let mut ticks = Ticks::new("every_second", &schedule);
        let first = ticks.next().await.expect("a first tick");
        // Handling the tick takes longer than the interval.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let next = tokio::time::timeout(Duration::from_secs(10), ticks.next())
            .await
            .expect("the schedule goes on")
            .expect("a next tick");
        assert!(next >= first + 2, "the tick that passed is skipped: {first} then {next}");
        let after = tokio::time::timeout(Duration::from_secs(10), ticks.next()).await.expect("and on").unwrap();
        assert!(after > next);
    }
}
