//! Background jobs on apalis: persisted (SQL storage by default, Redis when configured),
//! retried with exponential backoff, dead after their attempt limit, and cron entries that
//! fire once per tick however many schedulers run.
//!
//! A module registers handlers by name in [`JobRegistry`] and cron entries in
//! [`CronSchedule`]; anyone enqueues with `ctx.jobs().enqueue("name", &payload)`.

mod cron;
mod panel;
mod panel_redis;
mod store;
mod worker;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::context::AppContext;
use crate::error::{ServiceError, ServiceResult};

pub use self::cron::{CronEntry, CronSchedule, override_variable, spawn_scheduler};
pub use self::panel::{JobsCard, JobsPanel};
pub use self::store::{JobStats, JobStore};
pub use self::worker::spawn_worker;

/// What is stored for each job: the handler's name and its JSON payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The registered handler (`auth.send_email`).
    pub name: String,
    /// Its input.
    pub payload: Value,
}

/// How often and how patiently a job is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; after the last failure the job is dead.
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles for each further one.
    pub initial_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 5, initial_backoff: Duration::from_secs(2), max_backoff: Duration::from_secs(300) }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

type HandlerFuture = Pin<Box<dyn Future<Output = ServiceResult<()>> + Send>>;
type HandlerFn = dyn Fn(AppContext, Value) -> HandlerFuture + Send + Sync;

/// A registered handler and its retry policy.
#[derive(Clone)]
pub struct JobDefinition {
    handler: Arc<HandlerFn>,
    /// Its retry policy.
    pub retry: RetryPolicy,
}

impl JobDefinition {
    /// Runs the handler once.
    pub async fn run(&self, ctx: AppContext, payload: Value) -> ServiceResult<()> {
        (self.handler)(ctx, payload).await
    }
}

/// Job handlers by name.
#[derive(Clone, Default)]
pub struct JobRegistry {
    handlers: HashMap<String, JobDefinition>,
}

impl JobRegistry {
    /// Registers `handler` for jobs named `name`, with the default retry policy. The payload
    /// is deserialised into `T`; one that does not fit fails the job without retries.
    pub fn register<T, F, Fut>(&mut self, name: &str, handler: F)
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(AppContext, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ServiceResult<()>> + Send + 'static,
    {
        self.register_with(name, RetryPolicy::default(), handler);
    }

    /// Registers `handler` with an explicit retry policy.
    pub fn register_with<T, F, Fut>(&mut self, name: &str, retry: RetryPolicy, handler: F)
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(AppContext, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ServiceResult<()>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let erased: Arc<HandlerFn> = Arc::new(move |ctx: AppContext, payload: Value| {
            let handler = handler.clone();
            Box::pin(async move {
                let input: T = serde_json::from_value(payload)
                    .map_err(|err| ServiceError::bad_request("jobs.bad_payload", err.to_string()))?;
                handler(ctx, input).await
            }) as HandlerFuture
        });
        self.handlers.insert(name.to_owned(), JobDefinition { handler: erased, retry });
    }

    /// The definition of `name`, if registered.
    pub fn get(&self, name: &str) -> Option<&JobDefinition> {
        self.handlers.get(name)
    }

    /// The registered names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }

    /// Adds every handler of `other` (later registrations win).
    pub fn extend(&mut self, other: JobRegistry) {
        self.handlers.extend(other.handlers);
    }
}

/// Options of one enqueue.
#[derive(Debug, Clone, Default)]
pub struct EnqueueOptions {
    /// Run no sooner than this long from now.
    pub delay: Option<Duration>,
    /// A job with the same name and key is enqueued only once.
    pub unique_key: Option<String>,
}

/// The handle services use to enqueue jobs (in the context as `ctx.jobs()`).
#[derive(Clone)]
pub struct JobQueue {
    store: JobStore,
}

impl JobQueue {
    /// A queue on `store`.
    pub fn new(store: JobStore) -> Self {
        Self { store }
    }

    /// The storage behind the queue.
    pub fn store(&self) -> &JobStore {
        &self.store
    }

    /// Persists a job for the worker; it survives restarts until it runs.
    pub async fn enqueue(&self, name: &str, payload: &impl Serialize) -> ServiceResult<()> {
        self.enqueue_with(name, payload, EnqueueOptions::default()).await
    }

    /// Persists a job with options (delay, uniqueness).
    pub async fn enqueue_with(
        &self,
        name: &str,
        payload: &impl Serialize,
        options: EnqueueOptions,
    ) -> ServiceResult<()> {
        let payload = serde_json::to_value(payload).map_err(ServiceError::internal)?;
        self.store.push(Job { name: name.to_owned(), payload }, options).await
    }

    /// Counts of jobs by state.
    pub async fn stats(&self) -> ServiceResult<JobStats> {
        self.store.stats().await
    }

    /// Checks the storage answers.
    pub async fn ping(&self) -> ServiceResult<()> {
        self.store.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        assert_eq!(policy.backoff(1), Duration::from_millis(100));
        assert_eq!(policy.backoff(2), Duration::from_millis(200));
        assert_eq!(policy.backoff(3), Duration::from_millis(400));
        assert_eq!(policy.backoff(4), Duration::from_millis(500));
        assert_eq!(policy.backoff(40), Duration::from_millis(500));
    }
}
