//! Push delivery end to end: devices registered over HTTP, `notify` fanning out to FCM and
//! APNs fakes on loopback, invalid tokens removing devices, 5xx answers retried by the job,
//! and the clean-up crons — on SQLite, or PostgreSQL with SAAS_TEST_DATABASE_URL.

mod support;

use saas_core::testing::TestDatabase;
use saas_core::testing::wait_until;
use serde_json::json;
use support::push::{ApnsAnswer, FakeApns, FakeFcm, FcmAnswer};
use support::{NotifyApp, User, start_with};

/// An app whose push senders point at the fakes; `worker: false` leaves the jobs to the test.
async fn push_app(db: &TestDatabase, fcm: &FakeFcm, apns: &FakeApns, dir: &std::path::Path, worker: bool) -> NotifyApp {
    let mut vars = fcm.config_vars(dir);
    vars.extend(apns.config_vars(dir));
    start_with(db, move |mut builder| {
        for (name, value) in vars {
            builder = builder.var(&name, value);
        }
        builder.background(worker, worker)
    })
    .await
}

async fn app_with_push(db: &TestDatabase, fcm: &FakeFcm, apns: &FakeApns, dir: &std::path::Path) -> NotifyApp {
    push_app(db, fcm, apns, dir, true).await
}

async fn device(app: &NotifyApp, user: &User, platform: &str, token: &str) -> String {
    let response =
        app.post_as(user, "/api/v1/notifications/devices/", &json!({"platform": platform, "token": token})).await;
    response.assert_status(201);
    response.json()["id"].as_str().unwrap().to_owned()
}

async fn device_count(app: &NotifyApp, user: &User) -> usize {
    app.get_as(user, "/api/v1/notifications/devices/").await.json()["results"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_is_pushed_to_every_device_of_the_recipient() {
    let db = TestDatabase::create().await;
    let (fcm, apns, dir) = (FakeFcm::start().await, FakeApns::start().await, tempfile::tempdir().unwrap());
    let app = app_with_push(&db, &fcm, &apns, dir.path()).await;
    let ann = app.register("ann@example.com").await;
    device(&app, &ann, "fcm", "fcm-token-1").await;
    device(&app, &ann, "apns", "apns-device-1").await;

    let sent = app
        .service()
        .notify(ann.uuid, "new_message", json!({"sender_name": "Bob", "preview": "On my way"}))
        .await
        .unwrap()
        .unwrap();
    let id = sent.id.to_string();
    let deliveries = app.settled_deliveries(&id).await;
    let push: Vec<_> = deliveries.iter().filter(|(channel, _)| channel == "push").collect();
    assert_eq!(push.len(), 2, "{deliveries:?}");
    assert!(push.iter().all(|(_, status)| status == "sent"), "{deliveries:?}");

    let fcm_body = &fcm.sent()[0];
    assert_eq!(fcm_body["message"]["token"], "fcm-token-1");
    assert_eq!(fcm_body["message"]["notification"], json!({"title": "New message from Bob", "body": "On my way"}));
    assert_eq!(fcm_body["message"]["data"]["notification_id"], id);
    assert_eq!(fcm_body["message"]["data"]["type_key"], "new_message");
    assert_eq!(fcm.token_exchanges(), 1);

    let request = &apns.requests()[0];
    assert_eq!(request.token, "apns-device-1");
    assert_eq!(request.topic.as_deref(), Some(support::push::APNS_TOPIC));
    assert_eq!(request.push_type.as_deref(), Some("alert"));
    assert_eq!(request.body["aps"]["alert"], json!({"title": "New message from Bob", "body": "On my way"}));
    assert_eq!(request.body["notification_id"], id);

    let rows = app.service().store().deliveries_of(sent.id).await.unwrap();
    let apns_row = rows
        .iter()
        .find(|row| row.channel == "push" && row.provider_message_id.as_deref() == Some(request.apns_id.as_str()));
    assert!(apns_row.is_some(), "the provider's id is recorded: {rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_the_provider_rejects_remove_their_devices() {
    let db = TestDatabase::create().await;
    let (fcm, apns, dir) = (FakeFcm::start().await, FakeApns::start().await, tempfile::tempdir().unwrap());
    let app = app_with_push(&db, &fcm, &apns, dir.path()).await;
    let ann = app.register("ann@example.com").await;
    device(&app, &ann, "fcm", "uninstalled").await;
    device(&app, &ann, "apns", "gone-device").await;
    device(&app, &ann, "fcm", "still-here").await;
    fcm.fail_with("uninstalled", FcmAnswer::Unregistered);
    apns.fail_with("gone-device", ApnsAnswer::Unregistered);

    let note = app.alert(&ann, "Ping").await;
    let deliveries = app.settled_deliveries(note["id"].as_str().unwrap()).await;
    let mut push: Vec<&str> =
        deliveries.iter().filter(|(channel, _)| channel == "push").map(|(_, status)| status.as_str()).collect();
    push.sort();
    assert_eq!(push, vec!["abandoned", "abandoned", "sent"]);
    assert_eq!(device_count(&app, &ann).await, 1, "only the working device is left");
    let left = app.get_as(&ann, "/api/v1/notifications/devices/").await.json();
    assert_eq!(left["results"][0]["token"], "still-here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_error_is_retried_and_other_channels_do_not_wait() {
    let db = TestDatabase::create().await;
    let (fcm, apns, dir) = (FakeFcm::start().await, FakeApns::start().await, tempfile::tempdir().unwrap());
    let app = app_with_push(&db, &fcm, &apns, dir.path()).await;
    let ann = app.register("ann@example.com").await;
    device(&app, &ann, "fcm", "flaky").await;
    fcm.fail_with("flaky", FcmAnswer::ServerError { times: 1 });

    let note = app.alert(&ann, "Retry me").await;
    let id: uuid::Uuid = note["id"].as_str().unwrap().parse().unwrap();
    // The email is not held back by the failing push.
    app.wait_for_email(&ann.email, "Retry me").await;
    let service = app.service();
    wait_until("the push to succeed on its second attempt", async || {
        let rows = service.store().deliveries_of(id).await.unwrap();
        rows.iter().any(|row| row.channel == "push" && row.status == "sent" && row.attempts == 2)
    })
    .await;
    let statuses: Vec<u16> = fcm.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![500, 200]);
}

#[tokio::test]
async fn old_read_notifications_are_purged_and_failed_deliveries_requeued() {
    let db = TestDatabase::create().await;
    let app = support::start(&db).await;
    let ann = app.register("ann@example.com").await;
    let kept = app.alert(&ann, "unread").await;
    let read = app.alert(&ann, "read").await;
    let read_id = read["id"].as_str().unwrap();
    let kept_id = kept["id"].as_str().unwrap();
    // Every delivery goes out first, so the retry round below has nothing to pick up.
    app.settled_deliveries(kept_id).await;
    app.settled_deliveries(read_id).await;
    app.post_as(&ann, &format!("/api/v1/notifications/{read_id}/read/"), &json!({})).await.assert_status(200);
    let service = app.service();
    assert_eq!(service.purge_read(chrono::Duration::days(1)).await.unwrap(), 0, "too recent");
    assert_eq!(service.purge_read(chrono::Duration::zero()).await.unwrap(), 1);
    app.get_as(&ann, &format!("/api/v1/notifications/{read_id}/")).await.assert_error(404, "not_found");
    app.get_as(&ann, &format!("/api/v1/notifications/{kept_id}/")).await.assert_status(200);
    assert_eq!(service.retry_failed(chrono::Duration::zero(), 10).await.unwrap(), 0);
}

#[tokio::test]
async fn failed_deliveries_are_found_again_by_the_retry_round() {
    let db = TestDatabase::create().await;
    let (fcm, apns, dir) = (FakeFcm::start().await, FakeApns::start().await, tempfile::tempdir().unwrap());
    // No worker: the test plays the job runner.
    let app = push_app(&db, &fcm, &apns, dir.path(), false).await;
    let ann = app.register("ann@example.com").await;
    device(&app, &ann, "fcm", "flaky").await;
    fcm.fail_with("flaky", FcmAnswer::ServerError { times: 1 });
    let sent =
        app.service().notify(ann.uuid, "new_message", json!({"sender_name": "B", "preview": "p"})).await.unwrap();
    let service = app.service();
    let push = service
        .store()
        .deliveries_of(sent.unwrap().id)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.channel == "push")
        .unwrap();
    assert_eq!(push.status, "pending");

    assert!(service.deliver(push.id).await.is_err(), "the 500 asks for a retry");
    assert_eq!(service.store().delivery(push.id).await.unwrap().unwrap().status, "failed");
    assert_eq!(service.retry_failed(chrono::Duration::minutes(10), 10).await.unwrap(), 0, "not old enough yet");
    assert_eq!(service.retry_failed(chrono::Duration::zero(), 1).await.unwrap(), 0, "out of attempts");
    assert_eq!(service.retry_failed(chrono::Duration::zero(), 10).await.unwrap(), 1);

    service.deliver(push.id).await.unwrap();
    let row = service.store().delivery(push.id).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("sent", 2));
    assert_eq!(service.retry_failed(chrono::Duration::zero(), 10).await.unwrap(), 0);
    service.deliver(push.id).await.unwrap();
    assert_eq!(fcm.sent().len(), 1, "a sent delivery is not sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_racing_on_one_delivery_send_it_once() {
    let db = TestDatabase::create().await;
    let (fcm, apns, dir) = (FakeFcm::start().await, FakeApns::start().await, tempfile::tempdir().unwrap());
    let app = push_app(&db, &fcm, &apns, dir.path(), false).await;
    let ann = app.register("ann@example.com").await;
    device(&app, &ann, "fcm", "phone").await;
    let sent =
        app.service().notify(ann.uuid, "new_message", json!({"sender_name": "B", "preview": "p"})).await.unwrap();
    let service = app.service();
    let deliveries = service.store().deliveries_of(sent.unwrap().id).await.unwrap();
    let push = deliveries.into_iter().find(|d| d.channel == "push").unwrap();

    // Its own job, a staff retry and the retry round all run it at once.
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let service = service.clone();
            tokio::spawn(async move { service.deliver(push.id).await })
        })
        .collect();
    for racer in racers {
        racer.await.unwrap().unwrap();
    }
    let row = service.store().delivery(push.id).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("sent", 1));
    assert_eq!(fcm.sent().len(), 1, "sent once");
}

#[tokio::test]
async fn a_push_waiting_for_a_device_that_changed_hands_is_not_sent() {
    let db = TestDatabase::create().await;
    let (fcm, apns, dir) = (FakeFcm::start().await, FakeApns::start().await, tempfile::tempdir().unwrap());
    let app = push_app(&db, &fcm, &apns, dir.path(), false).await;
    let ann = app.register("ann@example.com").await;
    let bob = app.register("bob@example.com").await;
    device(&app, &ann, "fcm", "shared-phone").await;
    let sent = app.service().notify(ann.uuid, "new_message", json!({"sender_name": "Eve", "preview": "secret"})).await;
    let id = sent.unwrap().unwrap().id;
    // Bob signs in on the same phone before the push goes out.
    let moved =
        app.post_as(&bob, "/api/v1/notifications/devices/", &json!({"platform": "fcm", "token": "shared-phone"})).await;
    moved.assert_status(200);
    let service = app.service();
    let push = service.store().deliveries_of(id).await.unwrap().into_iter().find(|d| d.channel == "push").unwrap();
    service.deliver(push.id).await.unwrap();
    assert_eq!(service.store().delivery(push.id).await.unwrap().unwrap().status, "abandoned");
    assert!(fcm.sent().is_empty(), "ann's message never reaches bob's phone");
}
