//! Rate limits and idempotency keys through HTTP, on the test database and (when
//! `SAAS_TEST_REDIS_URL` is set) Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::post;
use reqwest::Method;
use saas_core::AppContext;
use saas_core::extract::Json;
use saas_core::testing::{TestApp, TestDatabase};
use saas_toolkit::RateLimit;
use saas_toolkit::idempotency::{IDEMPOTENT_REPLAYED, idempotency};
use serde_json::{Value, json};

async fn app_with(db: &TestDatabase) -> TestApp {
    let counter = Arc::new(AtomicU64::new(0));
    TestApp::builder()
        .customize(move |builder| {
            builder.routes(move |ctx: &AppContext| {
                let created = counter.clone();
                let login = Router::new()
                    .route("/login/", post(|| async { Json(json!({"ok": true})) }))
                    .route_layer(RateLimit::per_minute("test.login", 3).layer(ctx));
                let orders = Router::new()
                    .route(
                        "/orders/",
                        post(move |Json(body): Json<Value>| {
                            let created = created.clone();
                            async move {
                                let number = created.fetch_add(1, Ordering::SeqCst) + 1;
                                (axum::http::StatusCode::CREATED, Json(json!({"number": number, "echo": body})))
                            }
                        }),
                    )
                    .layer(axum::middleware::from_fn_with_state(ctx.clone(), idempotency));
                login.merge(orders)
            })
        })
        .start(db)
        .await
}

#[tokio::test]
async fn over_the_limit_is_429_with_retry_after() {
    let db = TestDatabase::create().await;
    let app = app_with(&db).await;
    for _ in 0..3 {
        app.post("/login/", &json!({})).await.assert_status(200);
    }
    let limited = app.post("/login/", &json!({})).await;
    limited.assert_error(429, "rate_limited");
    let retry_after: u64 = limited.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer() {
    let db = TestDatabase::create().await;
    let app = app_with(&db).await;
    let send = |key: &'static str, body: Value| {
        app.request(Method::POST, "/orders/").header("Idempotency-Key", key).json(&body).send()
    };
    let first = send("order-1", json!({"amount_cents": 500})).await;
    first.assert_status(201);
    assert_eq!(first.json()["number"], 1);
    assert!(first.header(IDEMPOTENT_REPLAYED).is_none());

    let again = send("order-1", json!({"amount_cents": 500})).await;
    again.assert_status(201);
    assert_eq!(again.json(), first.json(), "the stored answer is replayed");
    assert_eq!(again.header(IDEMPOTENT_REPLAYED), Some("true"));

    send("order-1", json!({"amount_cents": 900})).await.assert_error(400, "idempotency.key_reused");

    let other = send("order-2", json!({"amount_cents": 500})).await;
    assert_eq!(other.json()["number"], 2, "another key is another request");
    let plain = app.post("/orders/", &json!({"amount_cents": 500})).await;
    assert_eq!(plain.json()["number"], 3, "no key, no replay");

    let bad = app
        .request(Method::POST, "/orders/")
        .header("Idempotency-Key", "bad key with spaces")
        .json(&json!({}))
        .send()
        .await;
    bad.assert_error(400, "validation.failed");
}

#[tokio::test]
async fn concurrent_retries_with_one_key_run_once() {
    let db = TestDatabase::create().await;
    let app = app_with(&db).await;
    let requests = (0..8)
        .map(|_| app.request(Method::POST, "/orders/").header("Idempotency-Key", "race").json(&json!({"n": 1})).send());
    let answers = futures::future::join_all(requests).await;
    let created: Vec<_> = answers.iter().filter(|r| r.status == 201).collect();
    assert!(!created.is_empty());
    for answer in &answers {
        assert!(answer.status == 201 || answer.status == 409, "{}", answer.text());
        if answer.status == 409 {
            answer.assert_error(409, "idempotency.in_progress");
        }
    }
    for answer in &created {
        assert_eq!(answer.json()["number"], 1, "the handler ran once");
    }
}
