//! The reference server's wiring between modules: a chat message notifies the participants
//! who have no socket open on the conversation; payment events notify the payer and the
//! payee — on SQLite, or PostgreSQL with SAAS_TEST_DATABASE_URL.

use reqwest::Method;
use saas_core::testing::{TestApp, TestDatabase};
use saas_payments::testing::FakeStripe;
use serde_json::{Value, json};
use support::{await_notifications, notifications_of, register};

mod support;

async fn notifications(app: &TestApp, access: &str) -> Vec<Value> {
    notifications_of(app, access, "new_message").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_message_notifies_participants_without_an_open_socket() {
    let db = TestDatabase::create().await;
    let app = support::app().start(&db).await;
    let (_, ann) = register(&app, "ann@example.com").await;
    let (bob_id, bob) = register(&app, "bob@example.com").await;
    let (carol_id, carol) = register(&app, "carol@example.com").await;
    let group = app
        .request(Method::POST, "/api/v1/chat/conversations/")
        .bearer(&ann)
        .json(&json!({"conversation_type": "group", "title": "Team", "participant_ids": [bob_id, carol_id]}))
        .send()
        .await;
    group.assert_status(201);
    let id = group.json()["id"].as_str().unwrap().to_owned();

    // Carol has the conversation open; Bob does not.
    let mut carols = app.websocket(&format!("/ws/chat/{id}/?token={carol}")).await;
    carols.send_json(&json!({"type": "ping"})).await;
    assert_eq!(carols.next_json().await["type"], "pong");

    app.request(Method::POST, &format!("/api/v1/chat/conversations/{id}/messages/"))
        .bearer(&ann)
        .json(&json!({"content": "Standup in five minutes"}))
        .send()
        .await
        .assert_status(201);

    let found = await_notifications(&app, &bob, "new_message").await;
    assert_eq!(found.len(), 1, "bob is notified once");
    assert_eq!(found[0]["title"], "New message from ann@example.com");
    assert_eq!(found[0]["body"], "Standup in five minutes");
    assert_eq!(found[0]["data"]["conversation_id"], id);
    assert!(notifications(&app, &carol).await.is_empty(), "carol saw it on her socket");
    assert!(notifications(&app, &ann).await.is_empty(), "the sender is not notified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escrow_payment_events_notify_the_payer_and_the_payee() {
    let db = TestDatabase::create().await;
    let stripe = FakeStripe::start().await;
    let app = support::app_with_stripe(&stripe).start(&db).await;
    let (_, payer) = register(&app, "payer@example.com").await;
    let (payee_id, payee) = register(&app, "payee@example.com").await;
    let order = app
        .request(Method::POST, "/api/v1/payments/orders/")
        .bearer(&payer)
        .json(&json!({"strategy_type": "escrow", "amount_cents": 10_000, "payee_id": payee_id}))
        .send()
        .await;
    order.assert_status(201);
    let id = order.json()["id"].as_str().unwrap().to_owned();
    support::pay(&app, &stripe, &id).await;

    let paid = await_notifications(&app, &payer, "payment_succeeded").await;
    assert_eq!(paid.len(), 1);
    assert_eq!(paid[0]["body"], "Your payment of 100.00 USD succeeded.");

    app.request(Method::POST, &format!("/api/v1/payments/orders/{id}/release/"))
        .bearer(&payer)
        .send()
        .await
        .assert_status(200);
    let released = await_notifications(&app, &payee, "funds_released").await;
    assert_eq!(released.len(), 1);
    assert_eq!(released[0]["body"], "85.00 USD was released to you.");
    assert!(
        notifications_of(&app, &payee, "payment_succeeded").await.is_empty(),
        "only the payer hears of the payment"
    );
}
