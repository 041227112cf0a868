//! Where jobs are persisted: a SQLite file beside the app database, the app's PostgreSQL
//! database (`apalis` schema), or Redis when `REDIS_URL` is set.

use std::time::Duration;

use apalis::prelude::{Metrics, TaskBuilder, TaskSink};
use apalis_postgres::PostgresStorage;
use apalis_redis::RedisStorage;
use apalis_sqlite::SqliteStorage;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{PgPool, SqlitePool};

use super::{EnqueueOptions, Job};
use crate::config::Config;
use crate::db::{Db, sqlite_options};
use crate::error::{ServiceError, ServiceResult};

/// How long a worker may miss heartbeats before its running jobs are handed to another.
const HEARTBEAT: Duration = Duration::from_secs(5);
const MISSED_HEARTBEATS: usize = 3;
/// The storage-level attempt ceiling; retries with backoff are counted by the worker.
const STORAGE_MAX_ATTEMPTS: usize = 25;
/// How long Redis remembers a unique job key.
const UNIQUE_KEY_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The job storage of an app; cheap to clone.
#[derive(Clone)]
pub enum JobStore {
    /// A SQLite file of its own (`app.jobs.db` beside `app.db`), so the job tables' write
    /// traffic and apalis' pragmas never touch the app's data file.
    Sqlite {
        /// The jobs pool.
        pool: SqlitePool,
        /// Queue settings.
        config: apalis_sqlite::Config,
    },
    /// The app's PostgreSQL database, schema `apalis`.
    Postgres {
        /// The app's pool.
        pool: PgPool,
        /// Queue settings.
        config: apalis_postgres::Config,
    },
    /// Redis, keys under the app's prefix.
    Redis {
        /// A reconnecting connection.
        conn: redis::aio::ConnectionManager,
        /// Queue settings.
        config: apalis_redis::Config,
    },
}

/// Counts of jobs by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobStats {
    /// Waiting to run (including scheduled for later).
    pub pending: u64,
    /// Taken by a worker.
    pub running: u64,
    /// Finished successfully.
    pub done: u64,
    /// Failed and waiting for another attempt.
    pub failed: u64,
    /// Failed for the last time.
    pub dead: u64,
}

impl JobStore {
    /// Opens (and migrates) the storage the configuration asks for.
    pub async fn connect(config: &Config, db: &Db) -> ServiceResult<Self> {
        if let Some(url) = &config.redis_url {
            let client = redis::Client::open(url.as_str()).map_err(ServiceError::from)?;
            let conn = crate::cache::connection_manager(&client).await?;
            let queue = format!("{}jobs", config.redis_prefix);
            let config = apalis_redis::Config::default()
                .queue(queue)
                .heartbeat_interval(HEARTBEAT)
                .missed_heartbeats(MISSED_HEARTBEATS)
                .batch_size(config.job_concurrency)
                // Without a TTL the store expires unique keys at once (`EXPIRE key 0`).
                .idempotency_ttl(Some(UNIQUE_KEY_TTL));
            return Ok(JobStore::Redis { conn, config });
        }
        match db {
            Db::Sqlite(_) => {
                let options = sqlite_options(&config.database_url)?;
                let file = options.get_filename().to_path_buf();
                let options = if config.database_url.contains(":memory:") {
                    sqlite_options("sqlite::memory:")?
                } else {
                    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("app");
                    options.filename(file.with_file_name(format!("{stem}.jobs.db")))
                };
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .min_connections(1)
                    .connect_with(options)
                    .await
                    .map_err(ServiceError::from)?;
                let mut migrator = SqliteStorage::<()>::migrations();
                migrator.dangerous_set_table_name("_apalis_migrations");
                migrator
                    .run(&pool)
                    .await
                    .map_err(|err| ServiceError::internal(format!("job storage migrations: {err}")))?;
                let config = apalis_sqlite::Config::default()
                    .queue("jobs")
                    .heartbeat_interval(HEARTBEAT)
                    .missed_heartbeats(MISSED_HEARTBEATS)
                    .batch_size(config.job_concurrency);
                Ok(JobStore::Sqlite { pool, config })
            }
            Db::Postgres(pool) => {
                PostgresStorage::<()>::setup(pool)
                    .await
                    .map_err(|err| ServiceError::internal(format!("job storage migrations: {err}")))?;
                let config = apalis_postgres::Config::default()
                    .queue("jobs")
                    .heartbeat_interval(HEARTBEAT)
                    .missed_heartbeats(MISSED_HEARTBEATS)
                    .batch_size(config.job_concurrency);
                Ok(JobStore::Postgres { pool: pool.clone(), config })
            }
        }
    }

    /// `"sqlite"`, `"postgres"` or `"redis"`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            JobStore::Sqlite { .. } => "sqlite",
            JobStore::Postgres { .. } => "postgres",
            JobStore::Redis { .. } => "redis",
        }
    }

    /// Persists one job.
    pub async fn push(&self, job: Job, options: EnqueueOptions) -> ServiceResult<()> {
        let name = job.name.clone();
        let mut builder = TaskBuilder::new(job).max_attempts(STORAGE_MAX_ATTEMPTS);
        if let Some(delay) = options.delay {
            builder = builder.run_after(delay);
        }
        if let Some(key) = &options.unique_key {
            builder = builder.idempotency_key(format!("{}:{key}", name));
        }
        let task = builder.build();
        let result = match self {
            JobStore::Sqlite { pool, config } => SqliteStorage::<Job>::new(pool)
                .with_config(config.clone())
                .push_task(task)
                .await
                .map_err(|e| e.to_string()),
            JobStore::Postgres { pool, config } => {
                match PostgresStorage::<Job>::new(pool).with_config(config.clone()).push_task(task).await {
                    Ok(()) => Ok(()),
                    // A unique key already enqueued: PostgreSQL reports the duplicate, the
                    // other stores drop it silently; the outcome is the same.
                    Err(err) if options.unique_key.is_some() && is_duplicate(&err.to_string()) => Ok(()),
                    Err(err) => Err(err.to_string()),
                }
            }
            JobStore::Redis { conn, config } => RedisStorage::<Job>::new(conn.clone())
                .with_config(config.clone())
                .push_task(task)
                .await
                .map_err(|e| e.to_string()),
        };
        result.map_err(|err| {
            tracing::warn!(error = %err, "cannot enqueue a job");
            ServiceError::unavailable("jobs.unavailable", "The job queue is unavailable; try again shortly.")
        })
    }

    /// Counts of this app's jobs by state.
    pub async fn stats(&self) -> ServiceResult<JobStats> {
        let stats = match self {
            JobStore::Sqlite { pool, config } => SqliteStorage::<Job>::new(pool)
                .with_config(config.clone())
                .fetch_by_queue()
                .await
                .map_err(|e| e.to_string()),
            JobStore::Postgres { pool, config } => PostgresStorage::<Job>::new(pool)
                .with_config(config.clone())
                .fetch_by_queue()
                .await
                .map_err(|e| e.to_string()),
            JobStore::Redis { conn, config } => {
                return redis_stats(conn, config.queue.as_ref()).await;
            }
        }
        .map_err(|err| ServiceError::unavailable("jobs.unavailable", format!("cannot read job statistics: {err}")))?;
        let mut out = JobStats::default();
        for stat in stats {
            let value = stat.value.trim().parse::<f64>().unwrap_or(0.0).max(0.0) as u64;
            match stat.title.as_str() {
                "PENDING_JOBS" => out.pending = value,
                "RUNNING_JOBS" => out.running = value,
                "DONE_JOBS" => out.done = value,
                "FAILED_JOBS" => out.failed = value,
                "KILLED_JOBS" => out.dead = value,
                _ => {}
            }
        }
        Ok(out)
    }

    /// Checks the storage answers.
    pub async fn ping(&self) -> ServiceResult<()> {
        match self {
            JobStore::Sqlite { pool, .. } => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            JobStore::Postgres { pool, .. } => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            JobStore::Redis { conn, .. } => crate::cache::redis_ping(conn).await?,
        }
        Ok(())
    }
}

/// Counts read straight from the Redis store's keys (one atomic script).
const REDIS_STATS_SCRIPT: &str = r"
local q = KEYS[1]
local pending = redis.call('LLEN', q .. ':active') + redis.call('ZCARD', q .. ':scheduled')
local running = 0
for _, worker in ipairs(redis.call('ZRANGE', q .. ':workers', 0, -1)) do
    running = running + redis.call('SCARD', q .. ':inflight:' .. worker)
end
return {pending, running, redis.call('SCARD', q .. ':done'), redis.call('SCARD', q .. ':dead')}
";

async fn redis_stats(conn: &redis::aio::ConnectionManager, queue: &str) -> ServiceResult<JobStats> {
    let mut conn = conn.clone();
    let (pending, running, done, dead): (u64, u64, u64, u64) =
        redis::Script::new(REDIS_STATS_SCRIPT).key(queue).invoke_async(&mut conn).await?;
    Ok(JobStats { pending, running, done, failed: 0, dead })
}

fn is_duplicate(message: &str) -> bool {
    message.contains("duplicate key") || message.contains("unique")
}
