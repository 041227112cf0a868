//! The jobs panel on the Redis job store: ids read from the store's own sets (queued, taken,
//! done, dead), newest first — job ids are ULIDs — and each page's data and metadata read
//! with one pipeline. Retrying a dead job takes it out of the dead set and queues its job
//! again.

use redis::aio::ConnectionManager;

use super::Job;
use crate::admin::{Detail, ListPage, ListQuery, ListRow};
use crate::context::AppContext;
use crate::error::{ServiceError, ServiceResult};

/// The store's keys of one queue.
pub(super) struct RedisJobs {
    conn: ConnectionManager,
    config: apalis_redis::Config,
}

/// One job as the panel shows it.
struct Shown {
    id: String,
    name: String,
    payload: String,
    status: String,
    attempts: String,
    result: String,
}

impl RedisJobs {
    pub(super) fn new(conn: ConnectionManager, config: apalis_redis::Config) -> Self {
        Self { conn, config }
    }

    /// The ids of jobs with this stored status (all when `None`).
    async fn ids(&self, status: Option<&str>) -> ServiceResult<Vec<String>> {
        let mut conn = self.conn.clone();
        let mut ids: Vec<String> = Vec::new();
        let wants = |s: &str| status.is_none_or(|wanted| wanted == s);
        if wants("Pending") || wants("Failed") {
            let active: Vec<String> =
                redis::cmd("LRANGE").arg(self.config.active_jobs_list()).arg(0).arg(-1).query_async(&mut conn).await?;
            let scheduled: Vec<String> = redis::cmd("ZRANGE")
                .arg(self.config.scheduled_jobs_set())
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await?;
            ids.extend(active);
            ids.extend(scheduled);
        }
        if wants("Running") || wants("Queued") {
            let workers: Vec<String> =
                redis::cmd("ZRANGE").arg(self.config.workers_set()).arg(0).arg(-1).query_async(&mut conn).await?;
            for worker in workers {
                let key = format!("{}:{worker}", self.config.inflight_jobs_set());
                let taken: Vec<String> = redis::cmd("SMEMBERS").arg(key).query_async(&mut conn).await?;
                ids.extend(taken);
            }
        }
        if wants("Done") {
            let done: Vec<String> =
                redis::cmd("SMEMBERS").arg(self.config.done_jobs_set()).query_async(&mut conn).await?;
            ids.extend(done);
        }
        if wants("Killed") {
            let dead: Vec<String> =
                redis::cmd("SMEMBERS").arg(self.config.dead_jobs_set()).query_async(&mut conn).await?;
            ids.extend(dead);
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.dedup();
        Ok(ids)
    }

    /// Data and metadata of `ids`, in one round trip.
    async fn shown(&self, ids: &[String]) -> ServiceResult<Vec<Shown>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HGET").arg(self.config.job_data_hash()).arg(id);
            pipe.cmd("HGETALL").arg(format!("{}:{id}", self.config.job_meta_hash()));
        }
        let answers: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
        let mut shown = Vec::with_capacity(ids.len());
        for (id, pair) in ids.iter().zip(answers.chunks(2)) {
            let data: Option<Vec<u8>> = redis::from_redis_value_ref(&pair[0]).unwrap_or_default();
            let meta: std::collections::HashMap<String, String> =
                pair.get(1).and_then(|v| redis::from_redis_value_ref(v).ok()).unwrap_or_default();
            let job: Option<Job> = data.as_deref().and_then(|bytes| serde_json::from_slice(bytes).ok());
            shown.push(Shown {
                id: id.clone(),
                name: job.as_ref().map(|j| j.name.clone()).unwrap_or_default(),
                payload: job.map(|j| j.payload.to_string()).unwrap_or_default(),
                status: meta.get("status").cloned().unwrap_or_else(|| "Pending".to_owned()),
                attempts: meta.get("attempts").cloned().unwrap_or_else(|| "0".to_owned()),
                result: meta.get("result").cloned().unwrap_or_default(),
            });
        }
        Ok(shown)
    }

    pub(super) async fn list(&self, query: &ListQuery) -> ServiceResult<ListPage> {
        let status = query.filters.get("status").map(String::as_str);
        let mut ids = match query.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(id) => self.ids(None).await?.into_iter().filter(|candidate| candidate == id).collect(),
            None => self.ids(status).await?,
        };
        if let Some(after) = &query.after {
            ids.retain(|id| id.as_str() < after.as_str());
        }
        let limit = query.limit.clamp(1, 500);
        let more = ids.len() > limit;
        ids.truncate(limit);
        let mut rows = Vec::new();
        for job in self.shown(&ids).await? {
            // A failed job waiting for its retry sits with the queued ones.
            if status.is_some_and(|wanted| wanted != job.status) {
                continue;
            }
            rows.push(ListRow {
                id: job.id.clone(),
                cells: vec![job.id, job.name, job.status, job.attempts, String::new(), String::new()],
            });
        }
        Ok(ListPage { next: if more { ids.last().cloned() } else { None }, rows })
    }

    pub(super) async fn detail(&self, id: &str) -> ServiceResult<Option<Detail>> {
        let Some(job) = self.shown(&[id.to_owned()]).await?.pop().filter(|job| !job.name.is_empty()) else {
            return Ok(None);
        };
        Ok(Some(
            Detail::new(format!("Job {id}"))
                .field("Id", &job.id)
                .field("Job", &job.name)
                .field("Payload", &job.payload)
                .field("Status", &job.status)
                .field("Attempts", &job.attempts)
                .field("Last result", &job.result),
        ))
    }

    /// Takes a dead job out of the dead set and queues its job again (as a new job).
    pub(super) async fn retry(&self, ctx: &AppContext, id: &str) -> ServiceResult<()> {
        let refused = || ServiceError::conflict("jobs.not_retryable", "Only a failed or dead job can be retried.");
        let job = self.shown(&[id.to_owned()]).await?.pop().ok_or_else(refused)?;
        let mut conn = self.conn.clone();
        let removed: i64 = redis::cmd("SREM").arg(self.config.dead_jobs_set()).arg(id).query_async(&mut conn).await?;
        if removed == 0 || job.name.is_empty() {
            return Err(refused());
        }
        let payload: serde_json::Value = serde_json::from_str(&job.payload).unwrap_or_default();
        ctx.jobs().enqueue(&job.name, &payload).await
    }
}
