//! The plain axum app: auth routes beside the app's own, the app's route guarded by
//! `CurrentUser` through its own state.

use auth_only::app;
use saas_core::Config;
use saas_core::testing::TestDatabase;
use serde_json::{Value, json};

#[tokio::test]
async fn a_plain_axum_app_signs_users_up_and_guards_its_own_routes() {
    let db = TestDatabase::create().await;
    let mut vars = vec![("DEBUG".to_owned(), "true".to_owned()), ("DATABASE_URL".to_owned(), db.url().to_owned())];
    if let Some(redis) = saas_core::testing::test_redis_url() {
        vars.push(("REDIS_URL".into(), redis));
        vars.push(("REDIS_PREFIX".into(), db.redis_prefix()));
    }
    let (router, _ctx, jobs) = app(Config::from_vars(vars).unwrap()).await.unwrap();
    assert!(jobs.get("auth.send_email").is_some(), "the auth jobs are there for a worker");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await
    });
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{addr}{path}");

    let anonymous = client.get(url("/hello/")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let error: Value = anonymous.json().await.unwrap();
    assert_eq!(error["error"]["code"], "auth.not_authenticated");

    let registered = client
        .post(url("/api/v1/auth/registration/"))
        .json(&json!({"email": "plain@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let pair: Value = registered.json().await.unwrap();
    let hello = client.get(url("/hello/")).bearer_auth(pair["access"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(hello.status(), 200);
    assert_eq!(hello.text().await.unwrap(), format!("Hello, {}", pair["user"]["id"].as_str().unwrap()));
}
