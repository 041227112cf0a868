//! A module used by the platform tests: a few routes, a table, jobs and a cron entry.
#![allow(dead_code)]

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use saas_core::extract::{Json, Path};
use saas_core::jobs::{CronSchedule, JobRegistry, RetryPolicy};
use saas_core::{AppContext, Migrations, Module, ServiceError, ServiceResult, with_pool};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

pub struct TestModule {
    pub cron: bool,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct EchoRequest {
    pub name: String,
    pub count: u32,
}

#[utoipa::path(post, path = "/api/v1/test/echo/", request_body = EchoRequest, responses((status = 200, body = EchoRequest)))]
async fn echo(Json(body): Json<EchoRequest>) -> Json<EchoRequest> {
    Json(body)
}

async fn item(Path(id): Path<Uuid>) -> Result<Json<Value>, ServiceError> {
    if id.is_nil() {
        return Err(ServiceError::not_found("Item"));
    }
    Ok(Json(json!({"id": id})))
}

async fn slow() -> &'static str {
    // The shutdown test waits for this line before it signals the server.
    println!("slow request started");
    ::tokio::time::sleep(Duration::from_millis(1500)).await;
    "done"
}

async fn panics() -> &'static str {
    let items: Vec<&'static str> = Vec::new();
    items.first().copied().unwrap_or_else(|| panic!("handler bug"))
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Tagged {
    pub tag: String,
}

pub async fn record_run(ctx: &AppContext, tag: &str) -> ServiceResult<()> {
    let now = Utc::now();
    with_pool!(ctx.db(), pool => sqlx::query("INSERT INTO test_job_runs (tag, ran_at) VALUES ($1, $2)")
        .bind(tag)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(())
}

pub async fn runs(ctx: &AppContext, tag: &str) -> Vec<DateTime<Utc>> {
    with_pool!(ctx.db(), pool => sqlx::query_scalar::<_, DateTime<Utc>>("SELECT ran_at FROM test_job_runs WHERE tag = $1 ORDER BY id")
        .bind(tag)
        .fetch_all(pool)
        .await)
    .expect("query runs")
}

#[saas_core::reexports::async_trait]
impl Module for TestModule {
    fn name(&self) -> &'static str {
        "test"
    }

    fn migrations(&self) -> Migrations {
        Migrations::new(sqlx::migrate!("tests/migrations/sqlite"), sqlx::migrate!("tests/migrations/postgres"))
    }

    fn routes(&self, _ctx: &AppContext) -> Router<AppContext> {
        Router::new()
            .route("/api/v1/test/echo/", post(echo))
            .route("/api/v1/test/items/{id}/", get(item))
            .route("/api/v1/test/slow/", get(slow))
            .route("/api/v1/test/panic/", get(panics))
            .route(
                "/api/v1/test/plain-error/",
                get(|| async { (axum::http::StatusCode::IM_A_TEAPOT, "short and stout") }),
            )
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        use utoipa::OpenApi;
        #[derive(utoipa::OpenApi)]
        #[openapi(paths(echo))]
        struct Doc;
        Doc::openapi()
    }

    fn api_root(&self) -> Option<(&'static str, &'static str)> {
        Some(("test", "/api/v1/test/"))
    }

    fn jobs(&self, jobs: &mut JobRegistry) {
        jobs.register(
            "test.record",
            |ctx: AppContext, input: Tagged| async move { record_run(&ctx, &input.tag).await },
        );
        jobs.register("test.record_twice", |ctx: AppContext, input: Tagged| async move {
            record_run(&ctx, &input.tag).await?;
            record_run(&ctx, &input.tag).await
        });
        let policy = RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        };
        jobs.register_with("test.always_fails", policy, |ctx: AppContext, input: Tagged| async move {
            record_run(&ctx, &input.tag).await?;
            Err(ServiceError::unavailable("test.down", "the downstream service is down"))
        });
    }

    fn cron(&self, cron: &mut CronSchedule) {
        if self.cron {
            cron.add("test.every_second", "* * * * * *", "test.record", json!({"tag": "cron"}));
        }
    }
}
