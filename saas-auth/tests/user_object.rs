//! `GET user/` is served from each node's memory: every change made through the API or the
//! service, on any node sharing the Redis, shows on the next read of every node.

mod support;

use saas_auth::AuthService;
use saas_core::testing::{TestDatabase, redis_url};
use serde_json::{Value, json};
use support::{AuthApp, access, start_with};
use uuid::Uuid;

async fn node(db: &TestDatabase, prefix: &str) -> AuthApp {
    let prefix = prefix.to_owned();
    start_with(db, move |b| b.redis(redis_url(), prefix).background(false, false)).await
}

async fn me(app: &AuthApp, access: &str) -> Value {
    let response = app.get_auth("/api/v1/auth/user/", access).await;
    response.assert_status(200);
    response.json()
}

#[tokio::test]
async fn a_change_on_one_node_shows_on_the_next_read_of_every_node() {
    let db = TestDatabase::create().await;
    let prefix = format!("test:{}:", Uuid::new_v4().simple());
    let (a, b) = (node(&db, &prefix).await, node(&db, &prefix).await);
    let pair = a.register("ann@example.com").await;
    let token = access(&pair);
    let id: Uuid = pair["user"]["id"].as_str().unwrap().parse().unwrap();

    // Both nodes read the object once, then keep it.
    for _ in 0..2 {
        assert_eq!(me(&a, &token).await, pair["user"]);
        assert_eq!(me(&b, &token).await, pair["user"]);
    }

    // The profile, changed on A, shows on B.
    a.patch_auth(
        "/api/v1/auth/profile/",
        &token,
        &json!({"username": "ann_b", "first_name": "Ann", "last_name": "Bee"}),
    )
    .await
    .assert_status(200);
    let seen = me(&b, &token).await;
    assert_eq!((seen["username"].clone(), seen["full_name"].clone()), (json!("ann_b"), json!("Ann Bee")));
    assert_eq!(seen["profile_completed"], true);
    assert_eq!(me(&a, &token).await, seen);

    // The email, changed on B, shows on A (unverified again).
    b.patch_auth("/api/v1/auth/user/", &token, &json!({"email": "ann.bee@example.com"})).await.assert_status(200);
    let seen = me(&a, &token).await;
    assert_eq!(
        (seen["email"].clone(), seen["is_email_verified"].clone()),
        (json!("ann.bee@example.com"), json!(false))
    );

    // The service, as the admin and commands use it: deactivated on B, seen on A.
    let (service_a, service_b) = (AuthService::get(a.context()).unwrap(), AuthService::get(b.context()).unwrap());
    assert!(service_a.user(id).await.unwrap().is_active);
    service_b.deactivate(id, Some("testing")).await.unwrap();
    assert!(!service_a.user(id).await.unwrap().is_active);
    // Deactivation revoked the sessions: the kept object is not served to the old token.
    a.get_auth("/api/v1/auth/user/", &token).await.assert_error(401, "auth.token_invalid");
    // Made an active, verified superuser on A, seen on B.
    service_a.create_superuser("ann.bee@example.com", "another good secret").await.unwrap();
    let user = service_b.user(id).await.unwrap();
    assert!(user.is_active && user.is_email_verified, "{user:?}");
}

#[tokio::test]
async fn a_node_keeps_the_object_only_while_the_user_is_unchanged() {
    let db = TestDatabase::create().await;
    let app = support::start(&db).await;
    let pair = app.register("bob@example.com").await;
    let token = access(&pair);
    assert_eq!(me(&app, &token).await["username"], Value::Null);
    for name in ["bob_one", "bob_two", "bob_three"] {
        app.patch_auth("/api/v1/auth/profile/", &token, &json!({"username": name})).await.assert_status(200);
        assert_eq!(me(&app, &token).await["username"], name);
    }
}
