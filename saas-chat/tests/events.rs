//! The app's hook on new messages: it hears of each text message with the participants who
//! have no socket open — on SQLite, or PostgreSQL with SAAS_TEST_DATABASE_URL.

mod support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use saas_auth::AuthModule;
use saas_chat::{ChatEvents, ChatModule, MessagePosted};
use saas_core::AppContext;
use saas_core::testing::{TestApp, TestDatabase};
use support::{ChatApp, id_of};
use tokio::sync::mpsc;

struct Recorder(mpsc::UnboundedSender<MessagePosted>);

#[async_trait]
impl ChatEvents for Recorder {
    async fn message_posted(&self, _ctx: &AppContext, event: MessagePosted) {
        let _ = self.0.send(event);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_hears_of_new_messages_with_the_participants_not_connected() {
    let db = TestDatabase::create().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let app = ChatApp {
        app: TestApp::builder()
            .module(AuthModule::default())
            .module(ChatModule::default().events(Arc::new(Recorder(tx))))
            .var("AUTH_RATE_LIMIT_PER_MINUTE", "100000")
            .start(&db)
            .await,
    };
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    app.set_names(&alice, "alice", "Alice", "Archer").await;
    let id = id_of(&app.conversation(&alice, "Hook", &[&bob, &carol]).await);
    let mut carols = app.ws_ready(&id, &carol).await;

    let message = app.send(&alice, &id, "hello there").await;
    let event = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("the hook is called").unwrap();
    assert_eq!(event.conversation_id.to_string(), id);
    assert_eq!(event.conversation_title.as_deref(), Some("Hook"));
    assert_eq!(event.message.id.to_string(), id_of(&message));
    assert_eq!(event.message.content, "hello there");
    assert_eq!(event.sender_name, "Alice Archer");
    let offline: Vec<String> = event.offline_recipients.iter().map(ToString::to_string).collect();
    assert_eq!(offline, vec![bob.id.clone()], "carol is connected and alice sent it");

    // Once carol's socket is closed, she is offline too.
    carols.send_json(&serde_json::json!({"type": "ping"})).await;
    carols.close().await;
    let (ctx, conversation, carol_id) = (app.context().clone(), id.parse().unwrap(), carol.id.parse().unwrap());
    saas_core::testing::wait_until("carol's socket to be gone", async || {
        !saas_chat::hub::presence::is_online(&ctx, conversation, carol_id).await
    })
    .await;
    app.send(&bob, &id, "anyone?").await;
    let event = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("the hook is called").unwrap();
    let mut offline: Vec<String> = event.offline_recipients.iter().map(ToString::to_string).collect();
    offline.sort();
    let mut expected = vec![alice.id.clone(), carol.id.clone()];
    expected.sort();
    assert_eq!(offline, expected);
    // System messages (membership changes) are not handed to the hook.
    let dave = app.register("dave@example.com").await;
    app.added(&alice, &id, &dave, None).await;
    assert!(tokio::time::timeout(Duration::from_millis(300), rx.recv()).await.is_err());
}
