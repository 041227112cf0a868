//! The platform around the modules: `/health/`, the API root listing every module{% if auth %}, and
//! protected routes refusing anonymous callers{% endif %}.

use saas_core::testing::TestDatabase;

use crate::support;

#[tokio::test]
async fn the_app_is_healthy_and_lists_its_modules() {
    let db = TestDatabase::create().await;
    let app = support::start(&db).await;

    let health = app.get("/health/").await;
    health.assert_status(200);
    assert_eq!(health.json()["status"], "ok");

    let root = app.get("/api/v1/").await;
    root.assert_status(200);
    let links = root.json();
    let modules = [{% if auth %}"auth", {% endif %}{% if payments %}"payments", {% endif %}{% if chat %}"chat", {% endif %}{% if notify %}"notifications", {% endif %}"projects"];
    for module in modules {
        assert!(links[module].is_string(), "{module} is not mounted: {links}");
    }
}
{% if auth %}
#[tokio::test]
async fn protected_routes_refuse_anonymous_callers() {
    let db = TestDatabase::create().await;
    let app = support::start(&db).await;
    let paths = [{% if payments %}"/api/v1/payments/orders/", {% endif %}{% if chat %}"/api/v1/chat/conversations/", {% endif %}{% if notify %}"/api/v1/notifications/", {% endif %}"/api/v1/projects/"];
    for path in paths {
        app.get(path).await.assert_error(401, "auth.not_authenticated");
    }
}
{% endif %}
