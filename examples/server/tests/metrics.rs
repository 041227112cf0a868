//! `GET /metrics` of the reference server: off without `METRICS_TOKEN`, behind the token
//! when on, and in the OpenMetrics text format with requests per route, latency
//! histograms, open WebSockets, the job queue and the webhook lag.

use reqwest::Method;
use saas_core::testing::{TestApp, TestDatabase};
use serde_json::json;

const TOKEN: &str = "scrape-token-0123456789";

async fn scrape(app: &TestApp) -> String {
    let response = app.request(Method::GET, "/metrics").bearer(TOKEN).send().await;
    response.assert_status(200);
    assert!(response.header("content-type").is_some_and(|t| t.starts_with("application/openmetrics-text")));
    response.text()
}

/// The value of the sample line starting with `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find(|line| line.starts_with(series)).and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn metrics_are_off_unless_a_token_is_set() {
    let db = TestDatabase::create().await;
    let app = TestApp::builder().customize(saas_server::compose).start(&db).await;
    app.get("/metrics").await.assert_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_shows_routes_sockets_jobs_and_the_webhook_lag() {
    let db = TestDatabase::create().await;
    let app = TestApp::builder()
        .customize(saas_server::compose)
        .var("METRICS_TOKEN", TOKEN)
        .var("AUTH_RATE_LIMIT_PER_MINUTE", "100000")
        .start(&db)
        .await;
    app.get("/metrics").await.assert_error(401, "metrics.unauthenticated");
    app.request(Method::GET, "/metrics").bearer("wrong").send().await.assert_error(401, "metrics.unauthenticated");

    app.get("/health/").await.assert_status(200);
    app.get("/health/").await.assert_status(200);
    app.get("/no/such/page/").await.assert_status(404);
    let registered = app
        .post("/api/v1/auth/registration/", &json!({"email": "ann@example.com", "password": "correct horse battery"}))
        .await;
    registered.assert_status(201);
    let access = registered.json()["access"].as_str().unwrap().to_owned();
    let mut socket = app.websocket(&format!("/ws/notifications/?token={access}")).await;
    let _ = socket.next_json().await;

    // An event received 30 s ago and not processed yet.
    saas_core::with_pool!(app.context().db(), pool => sqlx::query(
        "INSERT INTO payment_webhook_events (id, event_type, payload, state, received_at) VALUES ($1, $2, $3, $4, $5)")
        .bind("evt_waiting").bind("payment_intent.succeeded").bind("{}").bind("pending")
        .bind(chrono::Utc::now() - chrono::Duration::seconds(30))
        .execute(pool).await.map(|_| ()))
    .unwrap();

    let text = scrape(&app).await;
    assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF");
    let health = value(&text, r#"saas_http_requests_total{method="GET",route="/health/",status="200"}"#);
    assert_eq!(health, Some(2.0), "{text}");
    assert_eq!(value(&text, r#"saas_http_requests_total{method="GET",route="unmatched",status="404"}"#), Some(1.0));
    let created = r#"saas_http_requests_total{method="POST",route="/api/v1/auth/registration/",status="201"}"#;
    assert_eq!(value(&text, created), Some(1.0));
    assert_eq!(value(&text, r#"saas_http_request_duration_seconds_count{method="GET",route="/health/"}"#), Some(2.0));
    assert!(
        text.contains(r#"saas_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/health/"}"#)
            || text.contains(r#"saas_http_request_duration_seconds_bucket{method="GET",route="/health/",le="+Inf"}"#),
        "{text}"
    );
    assert!(value(&text, r#"saas_websocket_connections{kind="notifications"}"#).is_some_and(|open| open >= 1.0));
    assert!(value(&text, r#"saas_jobs{state="pending"}"#).is_some(), "{text}");
    assert!(value(&text, r#"saas_jobs{state="dead"}"#).is_some());
    let lag = value(&text, "saas_payments_webhook_lag_seconds").expect("the webhook lag");
    assert!((29.0..120.0).contains(&lag), "lag {lag}");
    assert_eq!(value(&text, "saas_payments_webhook_failed_events"), Some(0.0));
}
