//! Background jobs in the admin site: queued, running, failed and dead jobs of the job
//! store (SQLite, PostgreSQL or Redis), a retry for failed and dead ones, and the queue's
//! counts on the dashboard.

use async_trait::async_trait;

use super::JobStore;
use super::panel_redis::RedisJobs;
use crate::admin::{
    ActionSpec, AdminPanel, AdminUser, Card, Column, DashboardCard, Detail, Filter, Form, KeyKind, ListPage, ListQuery,
    Search, SqlList, SqlValue, table,
};
use crate::context::AppContext;
use crate::db::Db;
use crate::error::{ServiceError, ServiceResult};

/// `(stored status, label)`; apalis' `Killed` is what the SDK calls dead.
const STATUSES: [(&str, &str); 6] = [
    ("Pending", "queued"),
    ("Queued", "taken"),
    ("Running", "running"),
    ("Done", "done"),
    ("Failed", "failed (will retry)"),
    ("Killed", "dead"),
];

/// Where the jobs are: a SQL table (a database handle, the table, the queue name) or Redis.
enum Source {
    Sql(Db, &'static str, String),
    Redis(RedisJobs),
}

fn source(ctx: &AppContext) -> Source {
    match ctx.jobs().store() {
        JobStore::Sqlite { pool, config } => {
            Source::Sql(Db::Sqlite(pool.clone()), "Jobs", config.queue.as_ref().to_owned())
        }
        JobStore::Postgres { pool, config } => {
            Source::Sql(Db::Postgres(pool.clone()), "apalis.jobs", config.queue.as_ref().to_owned())
        }
        JobStore::Redis { conn, config } => Source::Redis(RedisJobs::new(conn.clone(), config.clone())),
    }
}

fn list(db: &Db) -> SqlList {
    // Job ids are ULIDs: their order is the order jobs were enqueued.
    let list = SqlList::new(if matches!(db, Db::Sqlite(_)) { "Jobs" } else { "apalis.jobs" }, "id", KeyKind::Text)
        .search(Search::Key)
        .filter_text("status", "status")
        .condition("job_type = $1");
    match db {
        Db::Sqlite(_) => list.columns(&[
            "id",
            "json_extract(CAST(job AS TEXT), '$.name')",
            "status",
            "attempts",
            "datetime(run_at, 'unixepoch')",
            "datetime(done_at, 'unixepoch')",
        ]),
        Db::Postgres(_) => list.columns(&[
            "id",
            "convert_from(job, 'UTF8')::jsonb ->> 'name'",
            "status",
            "attempts",
            "run_at",
            "done_at",
        ]),
    }
}

/// Jobs of the app's queue.
#[derive(Debug, Clone, Copy, Default)]
pub struct JobsPanel;

#[async_trait]
impl AdminPanel for JobsPanel {
    fn slug(&self) -> &'static str {
        "jobs"
    }

    fn title(&self) -> &'static str {
        "Background jobs"
    }

    fn group(&self) -> &'static str {
        "Site"
    }

    fn columns(&self) -> Vec<Column> {
        ["Id", "Job", "Status", "Attempts", "Run at", "Finished"].into_iter().map(|label| Column { label }).collect()
    }

    fn search_hint(&self) -> Option<&'static str> {
        Some("job id")
    }

    fn filters(&self) -> Vec<Filter> {
        vec![Filter {
            name: "status",
            label: "Status",
            choices: STATUSES.iter().map(|(value, label)| (value.to_string(), label.to_string())).collect(),
        }]
    }

    fn actions(&self) -> Vec<ActionSpec> {
        vec![ActionSpec::new("retry", "Retry now")]
    }

    async fn list(&self, ctx: &AppContext, query: &ListQuery) -> ServiceResult<ListPage> {
        match source(ctx) {
            Source::Sql(db, _, queue) => list(&db).fetch_bound(&db, query, vec![SqlValue::Text(queue)]).await,
            Source::Redis(jobs) => jobs.list(query).await,
        }
    }

    async fn detail(&self, ctx: &AppContext, id: &str) -> ServiceResult<Option<Detail>> {
        let (db, table_name, queue) = match source(ctx) {
            Source::Sql(db, table_name, queue) => (db, table_name, queue),
            Source::Redis(jobs) => return jobs.detail(id).await,
        };
        let payload = match db {
            Db::Sqlite(_) => "CAST(job AS TEXT)",
            Db::Postgres(_) => "convert_from(job, 'UTF8')",
        };
        let sql = format!(
            "SELECT id, {payload}, status, attempts, max_attempts, run_at, done_at, lock_by, last_result \
             FROM {table_name} WHERE id = $1 AND job_type = $2"
        );
        let rows = table(&db, &sql, &[SqlValue::Text(id.to_owned()), SqlValue::Text(queue)]).await?;
        let Some(row) = rows.into_iter().next() else { return Ok(None) };
        let labels =
            ["Id", "Job", "Status", "Attempts", "Attempt limit", "Run at", "Finished", "Worker", "Last result"];
        Ok(Some(Detail::new(format!("Job {id}")).fields(&labels, row)))
    }

    async fn act(
        &self,
        ctx: &AppContext,
        _actor: &AdminUser,
        id: &str,
        action: &str,
        _form: &Form,
    ) -> ServiceResult<String> {
        if action != "retry" {
            return Err(ServiceError::not_found(&format!("Action {action}")));
        }
        let (db, queue) = match source(ctx) {
            Source::Sql(db, _, queue) => (db, queue),
            Source::Redis(jobs) => {
                jobs.retry(ctx, id).await?;
                return Ok("The job is queued again.".to_owned());
            }
        };
        let retried = match &db {
            Db::Sqlite(pool) => sqlx::query(
                "UPDATE Jobs SET status = 'Pending', attempts = 0, run_at = strftime('%s', 'now'), done_at = NULL, \
                 lock_at = NULL, lock_by = NULL WHERE id = $1 AND job_type = $2 AND status IN ('Failed', 'Killed')",
            )
            .bind(id)
            .bind(&queue)
            .execute(pool)
            .await?
            .rows_affected(),
            Db::Postgres(pool) => sqlx::query(
                "UPDATE apalis.jobs SET status = 'Pending', attempts = 0, run_at = now(), done_at = NULL, \
                 lock_at = NULL, lock_by = NULL WHERE id = $1 AND job_type = $2 AND status IN ('Failed', 'Killed')",
            )
            .bind(id)
            .bind(&queue)
            .execute(pool)
            .await?
            .rows_affected(),
        };
        if retried == 0 {
            return Err(ServiceError::conflict("jobs.not_retryable", "Only a failed or dead job can be retried."));
        }
        Ok("The job is queued again.".to_owned())
    }
}

/// The queue's counts by state.
#[derive(Debug, Clone, Copy, Default)]
pub struct JobsCard;

#[async_trait]
impl DashboardCard for JobsCard {
    async fn card(&self, ctx: &AppContext) -> ServiceResult<Card> {
        let stats = ctx.jobs().stats().await?;
        Ok(Card::new("Background jobs")
            .item("Queued", stats.pending, Some("/admin/jobs/?status=Pending"))
            .item("Running", stats.running, Some("/admin/jobs/?status=Running"))
            .item("Failed (will retry)", stats.failed, Some("/admin/jobs/?status=Failed"))
            .item("Dead", stats.dead, Some("/admin/jobs/?status=Killed"))
            .item("Done", stats.done, None))
    }
}
