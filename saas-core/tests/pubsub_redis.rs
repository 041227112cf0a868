//! Pub/sub and cache across two app instances sharing Redis (`SAAS_TEST_REDIS_URL`, or the
//! local server at 127.0.0.1:6379; an unreachable server fails the test).

use std::time::Duration;

use bytes::Bytes;
use saas_core::testing::{TestApp, TestDatabase, redis_url};

#[tokio::test]
async fn a_message_published_on_one_instance_reaches_a_subscriber_on_another() {
    let db = TestDatabase::create().await;
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let a = TestApp::builder().redis(redis_url(), prefix.clone()).start(&db).await;
    let b = TestApp::builder().redis(redis_url(), prefix.clone()).start(&db).await;
    assert_eq!(a.context().pubsub().backend_name(), "redis");

    let mut on_b = b.context().pubsub().subscribe("chat:room-1");
    let mut other_topic = b.context().pubsub().subscribe("chat:room-2");
    a.context().pubsub().publish("chat:room-1", Bytes::from_static(b"hello from a")).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), on_b.recv()).await.expect("delivered in time").unwrap();
    assert_eq!(got, "hello from a");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), other_topic.recv()).await.is_err(),
        "other topics stay quiet"
    );

    // Another app on the same server with another prefix does not hear it.
    let stranger =
        TestApp::builder().redis(redis_url(), format!("test:{}:", uuid::Uuid::new_v4().simple())).start(&db).await;
    let mut elsewhere = stranger.context().pubsub().subscribe("chat:room-1");
    a.context().pubsub().publish("chat:room-1", Bytes::from_static(b"second")).await.unwrap();
    assert_eq!(on_b.recv().await.unwrap(), "second");
    assert!(tokio::time::timeout(Duration::from_millis(300), elsewhere.recv()).await.is_err());
}

#[tokio::test]
async fn counters_and_claims_are_shared_between_instances() {
    let db = TestDatabase::create().await;
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let a = TestApp::builder().redis(redis_url(), prefix.clone()).start(&db).await;
    let b = TestApp::builder().redis(redis_url(), prefix).start(&db).await;
    let window = Duration::from_secs(60);
    assert_eq!(a.context().cache().increment("rl:login:1.2.3.4", window).await.unwrap().0, 1);
    let (count, left) = b.context().cache().increment("rl:login:1.2.3.4", window).await.unwrap();
    assert_eq!(count, 2);
    assert!(left <= window && left > Duration::from_secs(50));

    assert!(a.context().cache().set_if_absent("lock:x", Bytes::from_static(b"a"), window).await.unwrap());
    assert!(!b.context().cache().set_if_absent("lock:x", Bytes::from_static(b"b"), window).await.unwrap());
    assert_eq!(b.context().cache().get("lock:x").await.unwrap().unwrap(), "a");
    b.context().cache().set("other", Bytes::from_static(b"o"), None).await.unwrap();
    let many = a.context().cache().get_many(&["lock:x", "absent", "other"]).await.unwrap();
    assert_eq!(many, [Some(Bytes::from_static(b"a")), None, Some(Bytes::from_static(b"o"))]);
    assert!(a.context().cache().get_many(&[]).await.unwrap().is_empty());
    assert!(b.context().cache().delete("lock:x").await.unwrap());
    assert!(a.context().cache().get("lock:x").await.unwrap().is_none());
}
