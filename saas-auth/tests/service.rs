//! The service API other crates and apps call directly: the user directory, the guards
//! for staff and verified users, and the background clean-ups.

mod support;

use axum::Router;
use axum::routing::get;
use saas_auth::{AuthService, StaffUser, VerifiedUser, directory};
use saas_core::testing::TestDatabase;
use saas_core::{AppContext, with_pool};
use serde_json::json;
use support::{access, start_with, token_in};

fn guarded_routes(_ctx: &AppContext) -> Router<AppContext> {
    Router::new()
        .route("/staff-only/", get(|StaffUser(user): StaffUser| async move { user.email }))
        .route("/verified-only/", get(|VerifiedUser(user): VerifiedUser| async move { user.email }))
}

#[tokio::test]
async fn staff_and_verified_guards() {
    let db = TestDatabase::create().await;
    let app = start_with(&db, |b| b.customize(|builder| builder.routes(guarded_routes))).await;
    let pair = app.register("guard@example.com").await;
    let token = access(&pair);
    app.get_auth("/staff-only/", &token).await.assert_error(403, "auth.permission_denied");
    app.get_auth("/verified-only/", &token).await.assert_error(403, "auth.email_not_verified");
    app.get("/staff-only/").await.assert_error(401, "auth.not_authenticated");

    let link = token_in(&app.wait_for_email("guard@example.com", "Verify your email", 1).await, "verify-email");
    app.post("/api/v1/auth/verify-email/", &json!({"token": link})).await.assert_status(200);
    assert_eq!(app.get_auth("/verified-only/", &token).await.text(), "guard@example.com");

    let service = AuthService::get(app.context()).unwrap();
    service.create_superuser("guard@example.com", "a staff passphrase").await.unwrap();
    assert_eq!(app.get_auth("/staff-only/", &token).await.text(), "guard@example.com");
}

#[tokio::test]
async fn the_directory_finds_users_by_id() {
    let db = TestDatabase::create().await;
    let app = support::start(&db).await;
    let ann = app.register("ann.dir@example.com").await;
    let bob = app.register("bob.dir@example.com").await;
    app.patch_auth(
        "/api/v1/auth/profile/",
        &access(&bob),
        &json!({"username": "bobby", "first_name": "Bob", "last_name": "Dir"}),
    )
    .await
    .assert_status(200);
    let users = directory(app.context()).unwrap();
    let ann_id: uuid::Uuid = ann["user"]["id"].as_str().unwrap().parse().unwrap();
    let bob_id: uuid::Uuid = bob["user"]["id"].as_str().unwrap().parse().unwrap();
    let found = users.users(&[ann_id, bob_id, uuid::Uuid::new_v4()]).await.unwrap();
    assert_eq!(found.len(), 2);
    let bob_summary = found.iter().find(|u| u.id == bob_id).unwrap();
    assert_eq!(bob_summary.display_name, "Bob Dir");
    let ann_summary = users.user(ann_id).await.unwrap().unwrap();
    assert_eq!(ann_summary.display_name, "ann.dir@example.com");
    assert!(ann_summary.is_active && !ann_summary.is_staff);
    assert!(users.user(uuid::Uuid::new_v4()).await.unwrap().is_none());
}

#[tokio::test]
async fn expired_tokens_are_cleaned_up_and_stale_unverified_accounts_deactivated() {
    let db = TestDatabase::create().await;
    let app = start_with(&db, |b| b.var("AUTH_DEACTIVATE_UNVERIFIED_AFTER_DAYS", "30")).await;
    let old = app.register("old@example.com").await;
    let fresh = app.register("fresh@example.com").await;
    app.wait_for_email("fresh@example.com", "Verify your email", 1).await;
    let service = AuthService::get(app.context()).unwrap();
    let ctx = app.context();

    let past = chrono::Utc::now() - chrono::Duration::days(40);
    with_pool!(ctx.db(), pool => sqlx::query("UPDATE auth_users SET date_joined = $1 WHERE email = 'old@example.com'")
        .bind(past).execute(pool).await.map(|_| ()))
    .unwrap();
    assert_eq!(service.deactivate_unverified().await.unwrap(), 1);
    app.login("old@example.com", support::PASSWORD).await.assert_error(403, "auth.inactive");
    app.post("/api/v1/auth/token/refresh/", &json!({"refresh": support::refresh(&old)})).await.assert_status(401);
    app.login("fresh@example.com", support::PASSWORD).await.assert_status(200);
    assert_eq!(service.deactivate_unverified().await.unwrap(), 0);
    let _ = fresh;

    with_pool!(ctx.db(), pool => sqlx::query("UPDATE auth_one_time_tokens SET expires_at = $1").bind(past).execute(pool).await.map(|_| ())).unwrap();
    let removed = service.clean_up_expired().await.unwrap();
    assert!(removed >= 2, "{removed}");
    let left: i64 = with_pool!(ctx.db(), pool => sqlx::query_scalar("SELECT COUNT(*) FROM auth_one_time_tokens").fetch_one(pool).await).unwrap();
    assert_eq!(left, 0);
}
