//! The inbox over HTTP: listing and filters, detail, read and read-all, the unread count,
//! other people's notifications — on SQLite, or PostgreSQL with SAAS_TEST_DATABASE_URL.

mod support;

use saas_core::testing::TestDatabase;
use serde_json::json;
use support::start;

#[tokio::test]
async fn a_notification_is_rendered_stored_and_read() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let ann = app.register("ann@example.com").await;
    assert_eq!(app.unread(&ann).await, 0);

    let sent = app
        .service()
        .notify(ann.uuid, "new_message", json!({"sender_name": "Bob", "preview": "Lunch at noon?"}))
        .await
        .unwrap()
        .expect("stored in the inbox");
    assert_eq!(sent.title, "New message from Bob");
    assert_eq!(sent.body, "Lunch at noon?");
    assert_eq!(app.unread(&ann).await, 1);

    let list = app.get_as(&ann, "/api/v1/notifications/").await;
    list.assert_status(200);
    let body = list.json();
    assert_eq!(body["next_cursor"], serde_json::Value::Null);
    let item = &body["results"][0];
    for field in ["id", "type_key", "title", "body", "data", "actor_id", "is_read", "read_at", "created_at"] {
        assert!(item.get(field).is_some(), "{field} in {item}");
    }
    assert_eq!(item["type_key"], "new_message");
    assert_eq!(item["title"], "New message from Bob");
    assert_eq!(item["is_read"], false);

    let id = item["id"].as_str().unwrap();
    let detail = app.get_as(&ann, &format!("/api/v1/notifications/{id}/")).await;
    detail.assert_status(200);
    assert_eq!(detail.json()["body"], "Lunch at noon?");

    let read = app.post_as(&ann, &format!("/api/v1/notifications/{id}/read/"), &json!({})).await;
    read.assert_status(200);
    let read = read.json();
    assert_eq!(read["is_read"], true);
    assert!(read["read_at"].is_string());
    assert_eq!(app.unread(&ann).await, 0);
    let again = app.post_as(&ann, &format!("/api/v1/notifications/{id}/read/"), &json!({})).await;
    again.assert_status(200);
    assert_eq!(again.json()["read_at"], read["read_at"], "reading twice changes nothing");
    assert_eq!(app.unread(&ann).await, 0);
}

#[tokio::test]
async fn another_users_notification_is_not_found() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let ann = app.register("ann@example.com").await;
    let eve = app.register("eve@example.com").await;
    let note = app.alert(&ann, "Maintenance").await;
    let id = note["id"].as_str().unwrap();
    app.get_as(&eve, &format!("/api/v1/notifications/{id}/")).await.assert_error(404, "not_found");
    app.post_as(&eve, &format!("/api/v1/notifications/{id}/read/"), &json!({})).await.assert_error(404, "not_found");
    app.get_as(&eve, "/api/v1/notifications/00000000-0000-0000-0000-000000000000/")
        .await
        .assert_error(404, "not_found");
    app.get_as(&eve, "/api/v1/notifications/not-a-uuid/").await.assert_error(404, "not_found");
    assert_eq!(app.get_as(&eve, "/api/v1/notifications/").await.json()["results"], json!([]));
    assert_eq!(app.unread(&ann).await, 1, "eve's attempts changed nothing");
    app.get("/api/v1/notifications/").await.assert_error(401, "auth.not_authenticated");
}

#[tokio::test]
async fn filters_pages_and_read_all() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let ann = app.register("ann@example.com").await;
    for n in 0..5 {
        app.alert(&ann, &format!("alert {n}")).await;
    }
    app.service().notify(ann.uuid, "welcome", json!({})).await.unwrap();
    assert_eq!(app.unread(&ann).await, 6);

    let alerts = app.get_as(&ann, "/api/v1/notifications/?type=system_alert").await.json();
    assert_eq!(alerts["results"].as_array().unwrap().len(), 5);
    assert_eq!(alerts["results"][0]["title"], "alert 4", "newest first");

    let first = app.get_as(&ann, "/api/v1/notifications/?limit=4").await.json();
    assert_eq!(first["results"].as_array().unwrap().len(), 4);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = app.get_as(&ann, &format!("/api/v1/notifications/?limit=4&cursor={cursor}")).await.json();
    assert_eq!(second["results"].as_array().unwrap().len(), 2);
    assert_eq!(second["next_cursor"], serde_json::Value::Null);
    let mut ids: Vec<String> = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["results"].as_array().unwrap())
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "no duplicates across pages");

    let one = first["results"][0]["id"].as_str().unwrap();
    app.post_as(&ann, &format!("/api/v1/notifications/{one}/read/"), &json!({})).await.assert_status(200);
    let unread = app.get_as(&ann, "/api/v1/notifications/?is_read=false").await.json();
    assert_eq!(unread["results"].as_array().unwrap().len(), 5);
    let read = app.get_as(&ann, "/api/v1/notifications/?is_read=true").await.json();
    assert_eq!(read["results"].as_array().unwrap().len(), 1);
    app.get_as(&ann, "/api/v1/notifications/?is_read=maybe").await.assert_error(400, "validation.failed");
    app.get_as(&ann, "/api/v1/notifications/?cursor=garbage").await.assert_error(400, "validation.failed");

    let marked = app.post_as(&ann, "/api/v1/notifications/read-all/", &json!({})).await;
    marked.assert_status(200);
    assert_eq!(marked.json(), json!({"marked_count": 5}));
    assert_eq!(app.unread(&ann).await, 0);
    let none = app.post_as(&ann, "/api/v1/notifications/read-all/", &json!({})).await;
    assert_eq!(none.json(), json!({"marked_count": 0}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unread_count_stays_exact_under_concurrent_sends_and_reads() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let ann = app.register("ann@example.com").await;
    let service = app.service();
    let sends = (0..30).map(|n| {
        let service = service.clone();
        let user = ann.uuid;
        async move { service.notify(user, "system_alert", json!({"title": n.to_string(), "message": "m"})).await }
    });
    let reads = (0..5).map(|_| {
        let service = service.clone();
        let user = ann.uuid;
        async move { service.mark_all_read(user).await.map(|_| ()) }
    });
    let (sent, read) = futures::future::join(futures::future::join_all(sends), futures::future::join_all(reads)).await;
    assert!(sent.iter().all(Result::is_ok) && read.iter().all(Result::is_ok));
    let unread_rows = app.get_as(&ann, "/api/v1/notifications/?is_read=false&limit=100").await.json();
    let rows = unread_rows["results"].as_array().unwrap().len() as i64;
    assert_eq!(app.unread(&ann).await, rows, "the counter matches the rows");
}
