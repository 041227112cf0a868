//! The platform through HTTP: error envelopes, health, API docs, pub/sub, jobs and cron.
//! Runs on SQLite, or on PostgreSQL with `SAAS_TEST_DATABASE_URL` (and Redis with
//! `SAAS_TEST_REDIS_URL`).

mod common;

use std::time::Duration;

use common::{TestModule, runs};
use reqwest::Method;
use saas_core::jobs::{EnqueueOptions, JobStats};
use saas_core::testing::{TestApp, TestDatabase, eventually};
use serde_json::{Value, json};

async fn start(db: &TestDatabase) -> TestApp {
    TestApp::builder().module(TestModule { cron: false }).start(db).await
}

#[tokio::test]
async fn request_body_rejections_answer_with_the_envelope() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;

    let ok = app.post("/api/v1/test/echo/", &json!({"name": "a", "count": 2})).await;
    ok.assert_status(200);
    assert_eq!(ok.json(), json!({"name": "a", "count": 2}));

    let malformed = app
        .request(Method::POST, "/api/v1/test/echo/")
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await;
    let error = malformed.assert_error(400, "validation.failed");
    assert!(error["message"].as_str().unwrap().contains("Malformed JSON"));

    let trailing = app
        .request(Method::POST, "/api/v1/test/echo/")
        .header("content-type", "application/json")
        .body("{\"name\": \"a\", \"count\": 1} extra")
        .send()
        .await;
    trailing.assert_error(400, "validation.failed");

    let wrong_type = app
        .request(Method::POST, "/api/v1/test/echo/")
        .header("content-type", "text/plain")
        .body("{\"name\": \"a\", \"count\": 1}")
        .send()
        .await;
    wrong_type.assert_error(400, "validation.failed");

    let missing = app.post("/api/v1/test/echo/", &json!({"name": "a"})).await;
    let error = missing.assert_error(400, "validation.failed");
    assert_eq!(error["details"]["fields"]["count"], json!(["This field is required."]));

    let bad_value = app.post("/api/v1/test/echo/", &json!({"name": "a", "count": -1})).await;
    let error = bad_value.assert_error(400, "validation.failed");
    assert!(error["details"]["fields"]["count"].is_array(), "{error}");
}

#[tokio::test]
async fn routing_rejections_answer_with_the_envelope() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;

    app.get("/no/such/path/").await.assert_error(404, "not_found");
    app.get("/api/v1/test/echo/").await.assert_error(405, "method_not_allowed");
    app.get("/api/v1/test/items/not-a-uuid/").await.assert_error(404, "not_found");
    app.get("/api/v1/test/items/00000000-0000-0000-0000-000000000000/").await.assert_error(404, "not_found");
    let id = uuid::Uuid::new_v4();
    app.get(&format!("/api/v1/test/items/{id}/")).await.assert_status(200);

    let panic = app.get("/api/v1/test/panic/").await;
    let error = panic.assert_error(500, "internal_error");
    assert!(!error["message"].as_str().unwrap().contains("handler bug"), "panic text must not leak");

    let plain = app.get("/api/v1/test/plain-error/").await;
    let error = plain.assert_error(418, "validation.failed");
    assert_eq!(error["message"], "short and stout");
    assert!(plain.header("x-request-id").is_some(), "every answer carries a request id");
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_with_the_envelope() {
    let db = TestDatabase::create().await;
    let app = TestApp::builder().module(TestModule { cron: false }).var("MAX_BODY_BYTES", "1024").start(&db).await;
    let big = json!({"name": "x".repeat(4096), "count": 1});
    app.post("/api/v1/test/echo/", &big).await.assert_error(413, "payload_too_large");

    // The same, streamed without a Content-Length header.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(b"{\"name\": \"".to_vec()), Ok(vec![b'y'; 4096]), Ok(b"\", \"count\": 1}".to_vec())];
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let streamed = app
        .request(Method::POST, "/api/v1/test/echo/")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    streamed.assert_error(413, "payload_too_large");
}

#[tokio::test]
async fn health_reports_each_dependency_and_503_when_the_database_is_down() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let health = app.get("/health/").await;
    health.assert_status(200);
    let body = health.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["jobs"], "ok");
    let redis = if saas_core::testing::test_redis_url().is_some() { "ok" } else { "disabled" };
    assert_eq!(body["checks"]["redis"], redis);

    app.context().db().close().await;
    let down = app.get("/health/").await;
    down.assert_error(503, "unavailable");
    let body = down.json();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"], "unavailable");
}

#[tokio::test]
async fn the_schema_is_openapi_3_1_with_module_routes() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;

    let yaml = app.get("/schema/").await;
    yaml.assert_status(200);
    assert!(yaml.header("content-type").unwrap().contains("yaml"));
    let doc: Value = yaml_serde::from_str(&yaml.text()).expect("the schema is YAML");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    assert!(doc["paths"]["/api/v1/test/echo/"]["post"].is_object(), "module routes are listed");
    assert!(doc["paths"]["/health/"]["get"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearerAuth"].is_object());

    let json = app.get("/schema/?format=json").await;
    json.assert_status(200);
    assert_eq!(json.json(), serde_json::to_value(&doc).unwrap());
    app.get("/schema/?format=xml").await.assert_error(400, "validation.failed");

    let root = app.get("/api/v1/").await;
    assert_eq!(root.json()["test"], "/api/v1/test/");
}

#[tokio::test]
async fn redoc_and_swagger_ui_are_served() {
    let db = TestDatabase::create().await;
    let app =
        TestApp::builder().module(TestModule { cron: false }).var("REDOC_JS_URL", "/static/redoc.js").start(&db).await;

    let redoc = app.get("/").await;
    redoc.assert_status(200);
    let html = redoc.text();
    assert!(html.contains("spec-url=\"/schema/\""), "{html}");
    assert!(html.contains("src=\"/static/redoc.js\""), "the script URL is configurable: {html}");

    let swagger = app.get("/docs/").await;
    swagger.assert_status(200);
    let html = swagger.text();
    assert!(html.contains("swagger-ui"), "{html}");
    let mut assets = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for piece in html.split(attr).skip(1) {
            assets.push(piece.split('"').next().unwrap().to_owned());
        }
    }
    assert!(!assets.is_empty());
    for asset in &assets {
        assert!(!asset.contains("://"), "external asset {asset} in Swagger UI");
        let path = format!("/docs/{}", asset.trim_start_matches("./"));
        app.get(&path).await.assert_status(200);
    }
    let init = app.get("/docs/swagger-initializer.js").await.text();
    assert!(init.contains("/schema/?format=json"), "{init}");
    assert!(!init.contains("https://"), "no external URL in the initializer: {init}");
}

#[tokio::test]
async fn a_job_left_by_a_stopped_process_runs_in_the_next_one() {
    let db = TestDatabase::create().await;
    let first = TestApp::builder().module(TestModule { cron: false }).background(false, false).start(&db).await;
    first.context().jobs().enqueue("test.record", &json!({"tag": "left-behind"})).await.unwrap();
    first.shutdown().await;

    let second = TestApp::builder().module(TestModule { cron: false }).start(&db).await;
    let ctx = second.context().clone();
    let ran = eventually(Duration::from_secs(10), || {
        let ctx = ctx.clone();
        async move { runs(&ctx, "left-behind").await.len() == 1 }
    })
    .await;
    assert!(ran, "the job enqueued by the first process ran in the second");
    let ctx = second.context().clone();
    assert!(
        eventually(Duration::from_secs(5), || {
            let ctx = ctx.clone();
            async move { ctx.jobs().stats().await.map(|s| s.done == 1 && s.pending == 0).unwrap_or(false) }
        })
        .await,
        "stats: {:?}",
        second.context().jobs().stats().await
    );
}

#[tokio::test]
async fn a_failing_job_is_retried_with_backoff_then_dead() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    app.context().jobs().enqueue("test.always_fails", &json!({"tag": "flaky"})).await.unwrap();
    let ctx = app.context().clone();
    let dead = eventually(Duration::from_secs(15), || {
        let ctx = ctx.clone();
        async move { matches!(ctx.jobs().stats().await, Ok(JobStats { dead: 1, .. })) }
    })
    .await;
    assert!(dead, "the job ends dead; stats {:?}", app.context().jobs().stats().await);
    let attempts = runs(app.context(), "flaky").await;
    assert_eq!(attempts.len(), 3, "three attempts, then no more");
    let first_gap = attempts[1] - attempts[0];
    let second_gap = attempts[2] - attempts[1];
    assert!(first_gap >= chrono::Duration::milliseconds(190), "backoff before the 2nd attempt: {first_gap}");
    assert!(second_gap >= chrono::Duration::milliseconds(390), "doubled before the 3rd: {second_gap}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(runs(app.context(), "flaky").await.len(), 3, "a dead job is not run again");
}

#[tokio::test]
async fn a_unique_job_is_enqueued_once() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    for _ in 0..3 {
        let options = EnqueueOptions { delay: None, unique_key: Some("welcome:42".into()) };
        app.context().jobs().enqueue_with("test.record", &json!({"tag": "unique"}), options).await.unwrap();
    }
    let ctx = app.context().clone();
    assert!(
        eventually(Duration::from_secs(10), || {
            let ctx = ctx.clone();
            async move { !runs(&ctx, "unique").await.is_empty() }
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(runs(app.context(), "unique").await.len(), 1);
    // The key is per job name: another job with the same key still runs.
    let options = EnqueueOptions { delay: None, unique_key: Some("welcome:42".into()) };
    app.context().jobs().enqueue_with("test.record_twice", &json!({"tag": "unique"}), options).await.unwrap();
    let ctx = app.context().clone();
    assert!(
        eventually(Duration::from_secs(10), || {
            let ctx = ctx.clone();
            async move { runs(&ctx, "unique").await.len() >= 3 }
        })
        .await
    );
}

#[tokio::test]
async fn a_cron_entry_fires() {
    let db = TestDatabase::create().await;
    let app = TestApp::builder().module(TestModule { cron: true }).start(&db).await;
    let ctx = app.context().clone();
    let fired = eventually(Duration::from_secs(10), || {
        let ctx = ctx.clone();
        async move { runs(&ctx, "cron").await.len() >= 2 }
    })
    .await;
    assert!(fired, "the every-second entry ran its job at least twice");
}

#[tokio::test]
async fn a_bad_cron_expression_stops_the_build() {
    struct BadCron;
    #[saas_core::reexports::async_trait]
    impl saas_core::Module for BadCron {
        fn name(&self) -> &'static str {
            "bad_cron"
        }
        fn cron(&self, cron: &mut saas_core::jobs::CronSchedule) {
            cron.add("nightly", "every night", "x", json!({}));
        }
    }
    let db = TestDatabase::create().await;
    let config = saas_core::Config::from_vars([("DEBUG", "true"), ("DATABASE_URL", db.url())]).unwrap();
    let err = saas_core::SaasApp::builder(config).module(BadCron).build().await.err().expect("build fails");
    assert!(err.message().contains("nightly"), "{}", err.message());
}

#[tokio::test]
async fn an_operator_overrides_or_turns_off_a_cron_entry() {
    assert_eq!(saas_core::jobs::override_variable("test.every_second"), "CRON_TEST_EVERY_SECOND");
    let db = TestDatabase::create().await;
    // Turned off: the every-second entry never enqueues.
    let off =
        TestApp::builder().module(TestModule { cron: true }).var("CRON_TEST_EVERY_SECOND", "off").start(&db).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(runs(off.context(), "cron").await.is_empty(), "an entry turned off does not fire");
    off.shutdown().await;

    // A bad expression stops the build and names the variable.
    let config = saas_core::Config::from_vars([
        ("DEBUG", "true"),
        ("DATABASE_URL", db.url()),
        ("CRON_TEST_EVERY_SECOND", "every second"),
    ])
    .unwrap();
    let err = saas_core::SaasApp::builder(config).module(TestModule { cron: true }).build().await.err().expect("fails");
    assert!(err.message().contains("CRON_TEST_EVERY_SECOND"), "{}", err.message());

    // A new expression replaces the module's.
    let config = saas_core::Config::from_vars([
        ("DEBUG", "true"),
        ("DATABASE_URL", db.url()),
        ("CRON_TEST_EVERY_SECOND", "0 0 0 1 1 *"),
    ])
    .unwrap();
    let app = saas_core::SaasApp::builder(config).module(TestModule { cron: true }).build().await.expect("builds");
    let entry = &app.cron().entries()[0];
    assert_eq!(entry.schedule.to_string(), "0 0 0 1 1 *");
}

#[tokio::test]
async fn postgres_on_this_machine_is_reached_without_tls_unless_the_url_asks() {
    let db = TestDatabase::create().await;
    if !db.is_postgres() {
        return; // SQLite has no connection to encrypt.
    }
    let app = start(&db).await;
    let saas_core::Db::Postgres(pool) = app.context().db() else { unreachable!("a PostgreSQL test database") };
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(pool)
        .await
        .expect("pg_stat_ssl");
    assert!(!ssl, "the app's connections to {} are plain", db.url());
}
