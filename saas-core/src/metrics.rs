//! `GET /metrics` in the OpenMetrics text format Prometheus scrapes: requests and their
//! latency per route, open WebSockets, the job queue by state, and figures modules add
//! ([`Module::metrics`](crate::Module::metrics), e.g. the webhook lag). Off unless
//! `METRICS_TOKEN` is set; then a scrape must send `Authorization: Bearer <token>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use subtle::ConstantTimeEq;

use crate::context::AppContext;
use crate::error::ServiceError;

/// A figure a module reports at each scrape (a gauge).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (`saas_payments_webhook_lag_seconds`).
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Its value now.
    pub value: f64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The request metrics of one app, recorded by a layer on every route.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        fn histogram() -> Histogram {
            // 0.25 ms … ~8 s.
            Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
        }
        Self { requests: Family::default(), latency: Family::new_with_constructor(histogram) }
    }
}

/// Records a request: its route pattern (`/api/v1/chat/conversations/{id}/`, or
/// `unmatched`), method, status and duration.
pub async fn track(State(metrics): State<Arc<HttpMetrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics.requests.get_or_create(&RequestLabels { method: method.clone(), route: route.clone(), status }).inc();
    metrics.latency.get_or_create(&RouteLabels { method, route }).observe(started.elapsed().as_secs_f64());
    response
}

/// Open WebSockets by kind, for this process.
static OPEN_SOCKETS: [(&str, AtomicI64); 2] = [("chat", AtomicI64::new(0)), ("notifications", AtomicI64::new(0))];

/// Counts one open WebSocket while it lives (`kind`: `chat` or `notifications`).
#[derive(Debug)]
pub struct OpenSocket(usize);

impl OpenSocket {
    /// Counts a socket of `kind` until dropped; an unknown kind is not counted.
    pub fn new(kind: &str) -> Option<Self> {
        let index = OPEN_SOCKETS.iter().position(|(name, _)| *name == kind)?;
        OPEN_SOCKETS[index].1.fetch_add(1, Ordering::Relaxed);
        Some(Self(index))
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        OPEN_SOCKETS[self.0].1.fetch_sub(1, Ordering::Relaxed);
    }
}

fn token_matches(headers: &HeaderMap, token: &str) -> bool {
    let sent = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    sent.is_some_and(|sent| sent.len() == token.len() && bool::from(sent.as_bytes().ct_eq(token.as_bytes())))
}

/// `GET /metrics`.
pub async fn handler(State(ctx): State<AppContext>, headers: HeaderMap) -> Response {
    let Some(token) = ctx.config().var("METRICS_TOKEN").filter(|t| !t.is_empty()).map(str::to_owned) else {
        return ServiceError::not_found("Page").into_response();
    };
    if !token_matches(&headers, &token) {
        let mut response =
            ServiceError::unauthenticated("metrics.unauthenticated", "A valid metrics token is required.")
                .into_response();
        response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        return response;
    }
    match render(&ctx).await {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
            text,
        )
            .into_response(),
        Err(err) => err.into_response(),
    }
}

/// The scrape: the long-lived request families, then the figures of this moment.
async fn render(ctx: &AppContext) -> Result<String, ServiceError> {
    let mut registry = Registry::default();
    if let Some(http) = ctx.get::<Arc<HttpMetrics>>() {
        registry.register("saas_http_requests", "HTTP requests by route, method and status", http.requests.clone());
        registry.register(
            "saas_http_request_duration_seconds",
            "Time to answer, by route and method",
            http.latency.clone(),
        );
    }
    let sockets = Family::<KindLabels, Gauge>::default();
    for (kind, open) in &OPEN_SOCKETS {
        sockets.get_or_create(&KindLabels { kind: (*kind).to_owned() }).set(open.load(Ordering::Relaxed));
    }
    registry.register("saas_websocket_connections", "Open WebSockets of this process", sockets);

    let jobs = Family::<StateLabels, Gauge>::default();
    match ctx.jobs().stats().await {
        Ok(stats) => {
            for (state, value) in [
                ("pending", stats.pending),
                ("running", stats.running),
                ("failed", stats.failed),
                ("dead", stats.dead),
                ("done", stats.done),
            ] {
                jobs.get_or_create(&StateLabels { state: state.to_owned() }).set(value as i64);
            }
        }
        Err(err) => tracing::warn!(error = %err, "job statistics missing from the scrape"),
    }
    registry.register("saas_jobs", "Jobs in the queue by state (failed: waiting for a retry; dead: given up)", jobs);

    if let Some(modules) = ctx.get::<crate::app::Modules>() {
        for module in modules.iter() {
            for sample in module.metrics(ctx).await {
                let gauge = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
                gauge.set(sample.value);
                registry.register(sample.name, sample.help, gauge);
            }
        }
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).map_err(ServiceError::internal)?;
    Ok(text)
}
