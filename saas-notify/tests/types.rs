//! Notification types and templates: rendering, missing variables, overrides, inactive and
//! unknown types, creation checks, deletion of used types.

mod support;

use saas_core::testing::TestDatabase;
use saas_notify::{NewType, NotificationRequest, TypeUpdate};
use serde_json::json;
use support::start;

fn new_type(key: &str, title: &str, body: &str) -> NewType {
    serde_json::from_value(json!({"key": key, "display_name": "Test", "title_template": title, "body_template": body}))
        .unwrap()
}

#[tokio::test]
async fn the_domain_types_are_seeded() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let types = app.service().types().await.unwrap();
    let keys: Vec<&str> = types.iter().map(|t| t.key.as_str()).collect();
    for key in ["welcome", "new_message", "system_alert", "payment_succeeded", "funds_released", "refund_issued"] {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
    let welcome = app.service().notification_type("welcome").await.unwrap();
    assert_eq!(welcome.title_template, "Welcome to the app!");
    assert!(welcome.push_enabled && welcome.email_enabled && !welcome.websocket_enabled);
    let new_message = app.service().notification_type("new_message").await.unwrap();
    assert!(new_message.push_enabled && !new_message.email_enabled && new_message.websocket_enabled);
}

#[tokio::test]
async fn a_missing_variable_is_an_error_and_not_a_blank() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let ann = app.register("ann@example.com").await;
    let err = app.service().notify(ann.uuid, "new_message", json!({"sender_name": "Bob"})).await.unwrap_err();
    assert_eq!(err.code(), "notify.missing_variable");
    assert_eq!(err.details()["missing"], json!(["preview"]));
    assert_eq!(app.unread(&ann).await, 0, "nothing was stored");

    // An explicit title and body need no variables.
    let sent = app
        .service()
        .send(NotificationRequest::new(ann.uuid, "new_message", json!({})).text("Hello", "Plain text"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((sent.title.as_str(), sent.body.as_str()), ("Hello", "Plain text"));
}

#[tokio::test]
async fn unknown_and_inactive_types_are_refused() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let ann = app.register("ann@example.com").await;
    let err = app.service().notify(ann.uuid, "no_such_type", json!({})).await.unwrap_err();
    assert_eq!(err.code(), "notify.type_not_found");
    app.service().update_type("welcome", TypeUpdate { is_active: Some(false), ..TypeUpdate::default() }).await.unwrap();
    let err = app.service().notify(ann.uuid, "welcome", json!({})).await.unwrap_err();
    assert_eq!(err.code(), "notify.type_inactive");
    let prefs = app.get_as(&ann, "/api/v1/notifications/preferences/").await.json();
    assert!(prefs["preferences"].get("welcome").is_none(), "inactive types are not offered");
}

#[tokio::test]
async fn types_are_checked_when_saved_and_used_ones_cannot_be_deleted() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let service = app.service();
    let err = service.create_type(new_type("broken", "Hi {{ name", "x")).await.unwrap_err();
    assert_eq!(err.code(), "validation.failed");
    assert!(err.details()["fields"]["title_template"].is_array(), "{:?}", err.details());
    let err = service.create_type(new_type("Bad Key", "t", "b")).await.unwrap_err();
    assert!(err.details()["fields"]["key"].is_array());
    let err = service.create_type(new_type("welcome", "t", "b")).await.unwrap_err();
    assert_eq!(err.code(), "notify.type_exists");

    let created =
        service.create_type(new_type("order_shipped", "Order {{ number }} shipped", "By {{ carrier }}")).await.unwrap();
    assert!(created.id > 0 && created.is_active && created.push_enabled && !created.email_enabled);
    let ann = app.register("ann@example.com").await;
    let sent =
        service.notify(ann.uuid, "order_shipped", json!({"number": 42, "carrier": "Post"})).await.unwrap().unwrap();
    assert_eq!(sent.title, "Order 42 shipped");
    let err = service.delete_type("order_shipped").await.unwrap_err();
    assert_eq!(err.code(), "notify.type_in_use");

    service.create_type(new_type("unused", "t", "b")).await.unwrap();
    service.delete_type("unused").await.unwrap();
    assert_eq!(service.notification_type("unused").await.unwrap_err().code(), "notify.type_not_found");
}
