//! Channels: preferences switching them off, push devices, email through the file mailer,
//! sockets on one node and across two — on SQLite, or PostgreSQL with SAAS_TEST_DATABASE_URL.

mod support;

use std::time::Duration;

use saas_core::testing::{TestDatabase, WsEvent};
use serde_json::json;
use support::{start, start_node};

/// Asserts an `unread_count` frame with `count`.
fn assert_count(frame: &serde_json::Value, count: i64) {
    assert_eq!(frame["type"], "unread_count", "{frame}");
    assert_eq!(frame["count"], count, "{frame}");
    assert!(frame["version"].is_i64(), "{frame}");
}

#[tokio::test]
async fn preferences_list_every_type_and_switch_channels_off() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let ann = app.register("ann@example.com").await;
    let prefs = app.get_as(&ann, "/api/v1/notifications/preferences/").await;
    prefs.assert_status(200);
    let prefs = prefs.json();
    assert_eq!(
        prefs["preferences"]["new_message"],
        json!({"in_app": true, "push": true, "email": false, "websocket": true})
    );
    assert_eq!(
        prefs["preferences"]["system_alert"],
        json!({"in_app": true, "push": true, "email": true, "websocket": true})
    );

    let updated = app
        .put_as(&ann, "/api/v1/notifications/preferences/", &json!({"preferences": {"system_alert": {"email": false}}}))
        .await;
    updated.assert_status(200);
    assert_eq!(updated.json()["preferences"]["system_alert"]["email"], false);
    let note = app.alert(&ann, "Quiet").await;
    let deliveries = app.settled_deliveries(note["id"].as_str().unwrap()).await;
    assert!(deliveries.iter().all(|(channel, _)| channel != "email"), "{deliveries:?}");
    assert!(app.emails_to(&ann.email).iter().all(|m| !m.contains("Quiet")));

    // In-app off: nothing in the inbox, nothing counted.
    app.put_as(
        &ann,
        "/api/v1/notifications/preferences/",
        &json!({"preferences": {"system_alert": {"in_app": false}}}),
    )
    .await
    .assert_status(200);
    let before = app.unread(&ann).await;
    let sent = app.service().notify(ann.uuid, "system_alert", json!({"title": "t", "message": "m"})).await.unwrap();
    assert!(sent.is_none());
    assert_eq!(app.unread(&ann).await, before);

    // Refused, and nothing saved: unknown type, unknown channel, a channel the type lacks.
    for bad in [
        json!({"preferences": {"nope": {"push": false}}}),
        json!({"preferences": {"welcome": {"sms": false}}}),
        json!({"preferences": {"new_message": {"email": true, "push": false}}}),
        json!({"preferences": {"welcome": {"push": "off"}}}),
    ] {
        app.put_as(&ann, "/api/v1/notifications/preferences/", &bad).await.assert_error(400, "validation.failed");
    }
    let prefs = app.get_as(&ann, "/api/v1/notifications/preferences/").await.json();
    assert_eq!(prefs["preferences"]["new_message"]["push"], true, "the refused update saved nothing");
}

#[tokio::test]
async fn devices_register_idempotently_and_are_the_owners_only() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let ann = app.register("ann@example.com").await;
    let eve = app.register("eve@example.com").await;
    let first = app
        .post_as(
            &ann,
            "/api/v1/notifications/devices/",
            &json!({"platform": "fcm", "token": "tok-1", "device_id": "pixel"}),
        )
        .await;
    first.assert_status(201);
    let device = first.json();
    assert_eq!(device["platform"], "fcm");
    assert_eq!(device["token"], "tok-1");
    assert_eq!(device["device_id"], "pixel");
    let again =
        app.post_as(&ann, "/api/v1/notifications/devices/", &json!({"platform": "fcm", "token": "tok-1"})).await;
    again.assert_status(200);
    assert_eq!(again.json()["id"], device["id"]);
    app.post_as(&ann, "/api/v1/notifications/devices/", &json!({"platform": "apns", "token": "abc123"}))
        .await
        .assert_status(201);

    let list = app.get_as(&ann, "/api/v1/notifications/devices/").await.json();
    assert_eq!(list["results"].as_array().unwrap().len(), 2);
    assert_eq!(app.get_as(&eve, "/api/v1/notifications/devices/").await.json()["results"], json!([]));

    for bad in
        [json!({"platform": "sms", "token": "x"}), json!({"platform": "fcm", "token": ""}), json!({"platform": "fcm"})]
    {
        app.post_as(&ann, "/api/v1/notifications/devices/", &bad).await.assert_error(400, "validation.failed");
    }
    let id = device["id"].as_str().unwrap();
    app.delete_as(&eve, &format!("/api/v1/notifications/devices/{id}/")).await.assert_error(404, "not_found");
    app.delete_as(&ann, &format!("/api/v1/notifications/devices/{id}/")).await.assert_status(204);
    app.delete_as(&ann, &format!("/api/v1/notifications/devices/{id}/")).await.assert_error(404, "not_found");
    assert_eq!(app.get_as(&ann, "/api/v1/notifications/devices/").await.json()["results"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn email_goes_out_through_the_mailer_and_is_recorded() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let ann = app.register("ann@example.com").await;
    let note = app.alert(&ann, "Disk almost full").await;
    let mail = app.wait_for_email(&ann.email, "Disk almost full").await;
    assert!(mail.contains("About Disk almost full"), "{mail}");
    let deliveries = app.settled_deliveries(note["id"].as_str().unwrap()).await;
    assert!(deliveries.contains(&("email".to_owned(), "sent".to_owned())), "{deliveries:?}");
    assert!(deliveries.contains(&("websocket".to_owned(), "sent".to_owned())), "{deliveries:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_get_new_notifications_and_the_count() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let ann = app.register("ann@example.com").await;
    let bob = app.register("bob@example.com").await;
    let mut socket = app.socket(&ann).await;
    assert_count(&socket.next_json().await, 0);
    let mut bobs = app.socket(&bob).await;
    assert_eq!(bobs.next_json().await["type"], "unread_count");

    let note = app.alert(&ann, "Hello socket").await;
    let frame = socket.next_json().await;
    assert_eq!(frame["type"], "notification.new");
    assert_eq!(frame["notification"]["id"], note["id"]);
    assert_eq!(frame["notification"]["title"], "Hello socket");
    assert_count(&socket.next_json().await, 1);
    let id = note["id"].as_str().unwrap();
    app.post_as(&ann, &format!("/api/v1/notifications/{id}/read/"), &json!({})).await.assert_status(200);
    assert_count(&socket.next_json().await, 0);
    assert!(bobs.next_within(Duration::from_millis(300)).await.is_none(), "bob hears nothing of ann's");

    // A type without the websocket channel updates the count only.
    app.service().notify(ann.uuid, "welcome", json!({})).await.unwrap();
    assert_count(&socket.next_json().await, 1);

    socket.send_json(&json!({"type": "ping"})).await;
    assert_eq!(socket.next_json().await, json!({"type": "pong"}));

    let mut anonymous = app.websocket("/ws/notifications/").await;
    assert_eq!(anonymous.next_within(Duration::from_secs(5)).await, Some(WsEvent::Closed(Some(4401))));
    let mut forged = app.websocket("/ws/notifications/?token=not.a.jwt").await;
    assert_eq!(forged.next_within(Duration::from_secs(5)).await, Some(WsEvent::Closed(Some(4401))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_sent_on_one_node_reaches_a_socket_on_another() {
    let db = TestDatabase::create().await;
    let a = start_node(&db).await;
    let b = start_node(&db).await;
    let ann = a.register("ann@example.com").await;
    let mut socket = b.socket(&ann).await;
    assert_eq!(socket.next_json().await["type"], "unread_count");
    let note = a.alert(&ann, "Across nodes").await;
    let frame = socket.next_json().await;
    assert_eq!(frame["type"], "notification.new");
    assert_eq!(frame["notification"]["id"], note["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_that_arrives_after_a_newer_one_is_not_shown() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let ann = app.register("ann@example.com").await;
    let mut socket = app.socket(&ann).await;
    assert_count(&socket.next_json().await, 0);
    let topic = format!("notify:{}", ann.id);
    let pubsub = app.context().pubsub();
    // Two changes published in the other order than they were committed.
    let newer = json!({"type": "unread_count", "count": 9, "version": 5}).to_string();
    let older = json!({"type": "unread_count", "count": 7, "version": 3}).to_string();
    pubsub.publish(&topic, newer.into()).await.unwrap();
    pubsub.publish(&topic, older.into()).await.unwrap();
    assert_count(&socket.next_json().await, 9);
    assert!(socket.next_within(Duration::from_millis(300)).await.is_none(), "the older count is dropped");
}
