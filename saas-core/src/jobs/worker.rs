//! The job worker: takes jobs from the store, runs their handlers with retries and
//! backoff, and stops after its current jobs when the app shuts down.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::{AbortError, BackendExt, BoxDynError, Data, WorkerBuilder, WorkerBuilderExt};
use apalis_postgres::PostgresStorage;
use apalis_redis::RedisStorage;
use apalis_sqlite::SqliteStorage;
use futures::FutureExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Job, JobRegistry, JobStore};
use crate::context::AppContext;

/// How long a stopping worker waits for its running jobs before giving up on them (they
/// are then handed to another worker once this one's heartbeats stop).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

#[derive(Clone)]
struct WorkerState {
    ctx: AppContext,
    registry: Arc<JobRegistry>,
    token: CancellationToken,
}

/// Starts the worker; it runs until `token` is cancelled, restarting after storage errors.
pub fn spawn_worker(ctx: &AppContext, registry: &Arc<JobRegistry>, token: CancellationToken) -> JoinHandle<()> {
    let state = WorkerState { ctx: ctx.clone(), registry: registry.clone(), token };
    tokio::spawn(async move {
        let mut restarts: u64 = 0;
        while !state.token.is_cancelled() {
            let name = format!("worker-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
            tracing::info!(worker = %name, store = state.ctx.jobs().store().backend_name(), "job worker started");
            let result = run(&state, name).await;
            if state.token.is_cancelled() {
                break;
            }
            if let Err(err) = result {
                tracing::error!(error = %err, "job worker stopped; restarting");
            }
            restarts += 1;
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(restarts.min(10))) => {}
                () = state.token.cancelled() => break,
            }
        }
        tracing::info!("job worker stopped");
    })
}

async fn run(state: &WorkerState, name: String) -> Result<(), String> {
    let poll = state.ctx.config().job_poll_interval;
    let concurrency = state.ctx.config().job_concurrency.max(1);
    let stop = state.token.clone();
    let shutdown = async move {
        stop.cancelled().await;
        Ok::<(), std::io::Error>(())
    };
    let grace = async {
        state.token.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    macro_rules! run_on {
        ($storage:expr) => {{
            let worker = WorkerBuilder::new(name)
                .backend($storage.poll_with_interval(poll))
                .data(state.clone())
                .concurrency(concurrency)
                .build(execute);
            tokio::select! {
                result = worker.run_until(shutdown) => result.map_err(|err| err.to_string()),
                () = grace => Err("running jobs did not finish within the shutdown grace period".to_owned()),
            }
        }};
    }
    match state.ctx.jobs().store().clone() {
        JobStore::Sqlite { pool, config } => {
            run_on!(SqliteStorage::<Job>::new(&pool).with_config(config))
        }
        JobStore::Postgres { pool, config } => {
            run_on!(PostgresStorage::<Job>::new(&pool).with_config(config))
        }
        JobStore::Redis { conn, config } => {
            run_on!(RedisStorage::<Job>::new(conn).with_config(config))
        }
    }
}

/// Runs one job: up to its policy's attempts, waiting with backoff between them. A job
/// whose last attempt fails is dead (kept for inspection and manual retry). If the app
/// stops while waiting, the job is left failed and another worker continues it.
async fn execute(job: Job, state: Data<WorkerState>) -> Result<(), BoxDynError> {
    let Some(definition) = state.registry.get(&job.name).cloned() else {
        tracing::error!(job = %job.name, "no handler is registered for this job");
        return Err(AbortError::new(format!("no handler registered for job {}", job.name)).into());
    };
    let mut attempt = 1;
    loop {
        let outcome = AssertUnwindSafe(definition.run(state.ctx.clone(), job.payload.clone())).catch_unwind().await;
        let error = match outcome {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(err)) if err.code() == "jobs.bad_payload" => {
                tracing::error!(job = %job.name, error = %err, "job payload does not fit its handler");
                return Err(AbortError::new(err.to_string()).into());
            }
            Ok(Err(err)) => err.to_string(),
            Err(_) => "the job handler panicked".to_owned(),
        };
        if attempt >= definition.retry.max_attempts {
            tracing::error!(job = %job.name, attempt, error = %error, "job failed for the last time; it is dead");
            return Err(AbortError::new(error).into());
        }
        let wait = definition.retry.backoff(attempt);
        tracing::warn!(job = %job.name, attempt, error = %error, retry_in_ms = wait.as_millis() as u64, "job failed; retrying");
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = state.token.cancelled() => return Err(error.into()),
        }
        attempt += 1;
    }
}
