//! `/health/`: one check per dependency; 503 when a required one is down.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::app::Modules;
use crate::context::AppContext;

/// The state of one dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthStatus {
    /// Up.
    Ok,
    /// Not configured (e.g. Redis without `REDIS_URL`).
    Disabled,
    /// Down, with the reason (logged, not shown).
    Unavailable(String),
}

/// A named check, reported under `checks` in `/health/`.
#[derive(Debug, Clone)]
pub struct HealthCheck {
    /// The key under `checks`.
    pub name: String,
    /// Its state.
    pub status: HealthStatus,
    /// Whether the service is unavailable (503) while this check is down.
    pub required: bool,
}

impl HealthCheck {
    /// A required check from the outcome of a probe.
    pub fn required<E: std::fmt::Display>(name: &str, outcome: Result<(), E>) -> Self {
        let status = match outcome {
            Ok(()) => HealthStatus::Ok,
            Err(err) => HealthStatus::Unavailable(err.to_string()),
        };
        Self { name: name.to_owned(), status, required: true }
    }

    /// A check for a dependency that is not configured.
    pub fn disabled(name: &str) -> Self {
        Self { name: name.to_owned(), status: HealthStatus::Disabled, required: false }
    }
}

/// Runs every check of the platform and of the modules.
pub async fn run_checks(ctx: &AppContext, modules: &Modules) -> Vec<HealthCheck> {
    let database = tokio::time::timeout(std::time::Duration::from_secs(3), ctx.db().ping()).await;
    let mut checks = vec![HealthCheck::required(
        "database",
        database.map_err(|_| "timed out".to_owned()).and_then(|r| r.map_err(|e| e.to_string())),
    )];
    if ctx.config().redis_url.is_some() {
        let redis = tokio::time::timeout(std::time::Duration::from_secs(3), ctx.cache().ping()).await;
        checks.push(HealthCheck::required(
            "redis",
            redis.map_err(|_| "timed out".to_owned()).and_then(|r| r.map_err(|e| e.to_string())),
        ));
    } else {
        checks.push(HealthCheck::disabled("redis"));
    }
    checks.push(HealthCheck::required("jobs", ctx.jobs().ping().await));
    for module in modules.iter() {
        checks.extend(module.health(ctx).await);
    }
    checks
}

/// `GET /health/`.
pub async fn health_handler(State(ctx): State<AppContext>) -> Response {
    let modules = ctx.get::<Modules>().unwrap_or_default();
    let checks = run_checks(&ctx, &modules).await;
    let mut body = Map::new();
    let mut healthy = true;
    for check in &checks {
        let shown = match &check.status {
            HealthStatus::Ok => "ok",
            HealthStatus::Disabled => "disabled",
            HealthStatus::Unavailable(reason) => {
                tracing::warn!(check = %check.name, reason = %reason, "health check failed");
                if check.required {
                    healthy = false;
                }
                "unavailable"
            }
        };
        body.insert(check.name.clone(), Value::String(shown.to_owned()));
    }
    if healthy {
        return (StatusCode::OK, axum::Json(json!({"status": "ok", "checks": body}))).into_response();
    }
    // Still the error envelope of every non-2xx answer, beside the contract's status and checks.
    let error = json!({"code": "unavailable", "message": "A required dependency is unavailable.", "details": {}});
    let body = json!({"status": "unavailable", "checks": body, "error": error});
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}
