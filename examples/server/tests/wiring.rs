//! The reference server's wiring between modules: a chat message notifies the participants
//! who have no socket open on the conversation — on SQLite, or PostgreSQL with
//! SAAS_TEST_DATABASE_URL.

use std::time::Duration;

use reqwest::Method;
use saas_core::testing::{TestApp, TestDatabase};
use serde_json::{Value, json};

async fn register(app: &TestApp, email: &str) -> (String, String) {
    let response =
        app.post("/api/v1/auth/registration/", &json!({"email": email, "password": "correct horse battery"})).await;
    response.assert_status(201);
    let body = response.json();
    (body["user"]["id"].as_str().unwrap().to_owned(), body["access"].as_str().unwrap().to_owned())
}

async fn notifications(app: &TestApp, access: &str) -> Vec<Value> {
    let response = app.request(Method::GET, "/api/v1/notifications/?type=new_message").bearer(access).send().await;
    response.assert_status(200);
    response.json()["results"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_message_notifies_participants_without_an_open_socket() {
    let db = TestDatabase::create().await;
    let app =
        TestApp::builder().customize(saas_server::compose).var("AUTH_RATE_LIMIT_PER_MINUTE", "100000").start(&db).await;
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

    let mut found = Vec::new();
    for _ in 0..100 {
        found = notifications(&app, &bob).await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(found.len(), 1, "bob is notified once");
    assert_eq!(found[0]["title"], "New message from ann@example.com");
    assert_eq!(found[0]["body"], "Standup in five minutes");
    assert_eq!(found[0]["data"]["conversation_id"], id);
    assert!(notifications(&app, &carol).await.is_empty(), "carol saw it on her socket");
    assert!(notifications(&app, &ann).await.is_empty(), "the sender is not notified");
}
