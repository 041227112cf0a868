//! The chat WebSocket: authentication, fan-out of messages, edits and deletions, typing,
//! read receipts, membership changes, error frames, two nodes through Redis, and fifty
//! clients agreeing on one order — on SQLite, or PostgreSQL with SAAS_TEST_DATABASE_URL.

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use saas_core::testing::{TestDatabase, TestWebSocket, WsEvent};
use serde_json::{Value, json};
use support::{
    ChatApp, MESSAGE_FIELDS, QUIET, User, WAIT, assert_has_fields, assert_silent, assert_unique, conversation_path,
    conversation_sub, expect_close, has_no_client_id, id_of, ids, message_path, next_matching, next_of_type,
    next_user_message, participant_path, start, start_node, unknown_id,
};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Waits for the `participant.left` frame about `user_id`.
async fn next_left(socket: &mut TestWebSocket, user_id: &str) -> Value {
    next_matching(socket, "participant.left", |f| f["type"] == "participant.left" && f["user_id"] == user_id).await
}

/// After a removal: the socket closes with 4404; only system `message.new` frames (about
/// the removal) may come before the close.
async fn expect_cut_off(socket: &mut TestWebSocket) {
    loop {
        match socket.next_within(WAIT).await {
            Some(WsEvent::Closed(code)) => {
                assert_eq!(code, Some(4404), "a removed participant's socket is closed with 4404");
                return;
            }
            Some(WsEvent::Json(frame))
                if frame["type"] == "message.new" && frame["message"]["message_type"] == "system" =>
            {
                continue;
            }
            other => panic!("expected the socket to close with 4404, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_socket_without_a_valid_access_token_is_closed_with_4401() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let id = id_of(&app.conversation(&alice, "Locked", &[&bob]).await);

    let mut anonymous = app.websocket(&format!("/ws/chat/{id}/")).await;
    expect_close(&mut anonymous, 4401).await;
    let mut garbage = app.ws(&id, "not.a.jwt").await;
    expect_close(&mut garbage, 4401).await;
    let mut refresh = app.ws(&id, &alice.refresh).await;
    expect_close(&mut refresh, 4401).await;

    // A valid token still works.
    let mut socket = app.ws(&id, &alice.access).await;
    socket.send_json(&json!({"type": "ping"})).await;
    assert_eq!(next_of_type(&mut socket, "pong").await["type"], "pong");
}

#[tokio::test]
async fn a_socket_on_an_unknown_or_foreign_conversation_is_closed_with_4404() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let eve = app.register("eve@example.com").await;
    let id = id_of(&app.conversation(&alice, "Private", &[&bob]).await);
    let direct = id_of(&app.direct(&alice, &bob).await);

    let mut unknown = app.ws(&unknown_id(), &alice.access).await;
    expect_close(&mut unknown, 4404).await;
    let mut foreign = app.ws(&id, &eve.access).await;
    expect_close(&mut foreign, 4404).await;
    let mut foreign_direct = app.ws(&direct, &eve.access).await;
    expect_close(&mut foreign_direct, 4404).await;
}

#[tokio::test]
async fn the_authorization_header_authenticates_a_socket() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let id = id_of(&app.conversation(&alice, "Headers", &[&bob]).await);

    let mut request = format!("ws://{}/ws/chat/{id}/", app.addr).into_client_request().expect("a ws request");
    request.headers_mut().insert("authorization", format!("Bearer {}", alice.access).parse().expect("a header"));
    let (mut stream, _) = tokio_tungstenite::connect_async(request).await.expect("the upgrade is accepted");
    stream.send(WsMessage::text(json!({"type": "ping"}).to_string())).await.expect("sent");
    let reply = tokio::time::timeout(WAIT, async {
        loop {
            match stream.next().await {
                Some(Ok(WsMessage::Text(text))) => {
                    return serde_json::from_str::<Value>(text.as_str()).expect("a JSON frame");
                }
                Some(Ok(WsMessage::Close(frame))) => panic!("closed: {frame:?}"),
                Some(Ok(_)) => continue,
                other => panic!("the socket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("an answer in time");
    assert_eq!(reply["type"], "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_on_a_socket_reaches_every_participant_socket() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    let id = id_of(&app.conversation(&alice, "Live", &[&bob, &carol]).await);
    let mut alice_one = app.ws_ready(&id, &alice).await;
    let mut alice_two = app.ws_ready(&id, &alice).await;
    let mut bobs = app.ws_ready(&id, &bob).await;

    alice_one.send_json(&json!({"type": "message", "content": "  hi all  ", "client_id": "c-1"})).await;
    let mut first_ids = HashSet::new();
    for socket in [&mut alice_one, &mut alice_two, &mut bobs] {
        let frame = next_user_message(socket).await;
        assert_eq!(frame["client_id"], "c-1", "{frame}");
        let message = &frame["message"];
        assert_has_fields(message, MESSAGE_FIELDS);
        assert_eq!(message["content"], "hi all");
        assert_eq!(message["sender_id"], alice.id.as_str());
        assert_eq!(message["conversation_id"], id.as_str());
        assert_eq!(message["message_type"], "text");
        first_ids.insert(id_of(message));
    }
    assert_eq!(first_ids.len(), 1, "one message: {first_ids:?}");
    let first = first_ids.into_iter().next().unwrap();
    let stored = app.message(&carol, &id, &first).await;
    assert_eq!(stored["content"], "hi all");
    assert_eq!(stored["sender_id"], alice.id.as_str());

    // A message posted over REST is fanned out too, without a client_id.
    let posted = app.send(&bob, &id, "from rest").await;
    for socket in [&mut alice_one, &mut alice_two, &mut bobs] {
        let frame = next_user_message(socket).await;
        assert!(has_no_client_id(&frame), "{frame}");
        assert_eq!(frame["message"]["id"], posted["id"]);
        assert_eq!(frame["message"]["content"], "from rest");
    }

    // A socket message without a client_id, and a reply over the socket.
    bobs.send_json(&json!({"type": "message", "content": "no id"})).await;
    for socket in [&mut alice_one, &mut alice_two, &mut bobs] {
        let frame = next_user_message(socket).await;
        assert!(has_no_client_id(&frame), "{frame}");
        assert_eq!(frame["message"]["content"], "no id");
        assert_eq!(frame["message"]["sender_id"], bob.id.as_str());
    }
    alice_two.send_json(&json!({"type": "message", "content": "re", "reply_to_id": first, "client_id": "c-2"})).await;
    for socket in [&mut alice_one, &mut alice_two, &mut bobs] {
        let frame = next_user_message(socket).await;
        assert_eq!(frame["client_id"], "c-2");
        assert_eq!(frame["message"]["reply_to_id"], first.as_str());
    }
    assert_eq!(app.message(&carol, &id, &first).await["reply_count"], 1);
    for socket in [&mut alice_one, &mut alice_two, &mut bobs] {
        assert_silent(socket).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_reaches_the_others_but_not_the_typist() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let id = id_of(&app.conversation(&alice, "Typing", &[&bob]).await);
    let mut alice_one = app.ws_ready(&id, &alice).await;
    let mut alice_two = app.ws_ready(&id, &alice).await;
    let mut bobs = app.ws_ready(&id, &bob).await;

    alice_one.send_json(&json!({"type": "typing", "is_typing": true})).await;
    let frame = next_of_type(&mut bobs, "typing").await;
    assert_eq!(frame["user_id"], alice.id.as_str());
    assert_eq!(frame["is_typing"], true);
    assert_silent(&mut alice_one).await;
    assert_silent(&mut alice_two).await;

    alice_one.send_json(&json!({"type": "typing", "is_typing": false})).await;
    let frame = next_of_type(&mut bobs, "typing").await;
    assert_eq!(frame["user_id"], alice.id.as_str());
    assert_eq!(frame["is_typing"], false);

    bobs.send_json(&json!({"type": "typing", "is_typing": true})).await;
    for socket in [&mut alice_one, &mut alice_two] {
        let frame = next_of_type(socket, "typing").await;
        assert_eq!(frame["user_id"], bob.id.as_str());
        assert_eq!(frame["is_typing"], true);
    }
    assert_silent(&mut bobs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_receipts_reach_everyone_and_mark_the_conversation_read() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let id = id_of(&app.conversation(&alice, "Receipts", &[&bob]).await);
    let mut alices = app.ws_ready(&id, &alice).await;
    let mut bobs = app.ws_ready(&id, &bob).await;

    let message = id_of(&app.send(&alice, &id, "read me").await);
    for socket in [&mut alices, &mut bobs] {
        next_user_message(socket).await;
    }
    bobs.send_json(&json!({"type": "read", "message_id": message})).await;
    for socket in [&mut alices, &mut bobs] {
        let frame = next_of_type(socket, "read").await;
        assert_eq!(frame["user_id"], bob.id.as_str());
        assert_eq!(frame["message_id"], message.as_str());
    }
    assert_eq!(app.unread(&bob, &id).await, 0);
    app.send(&alice, &id, "and this").await;
    assert_eq!(app.unread(&bob, &id).await, 1);
}

#[tokio::test]
async fn a_ping_gets_a_pong() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let id = id_of(&app.conversation(&alice, "Ping", &[&bob]).await);
    let mut socket = app.ws(&id, &alice.access).await;
    for _ in 0..3 {
        socket.send_json(&json!({"type": "ping"})).await;
        assert_eq!(socket.next_json().await["type"], "pong");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_frames_get_error_frames_and_the_socket_stays_open() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let id = id_of(&app.conversation(&alice, "Errors", &[&bob]).await);
    let mut alices = app.ws_ready(&id, &alice).await;
    let mut bobs = app.ws_ready(&id, &bob).await;

    let cases: [(&str, &str); 4] = [
        ("this is not json", "chat.invalid_frame"),
        (r#"{"type": "dance"}"#, "chat.unknown_type"),
        (r#"{"type": "message", "content": "   "}"#, "validation.failed"),
        (r#"{"type": "message", "content": ""}"#, "validation.failed"),
    ];
    for (text, code) in cases {
        alices.send_text(text).await;
        let frame = next_of_type(&mut alices, "error").await;
        assert_eq!(frame["code"], code, "{text} → {frame}");
        assert!(frame["message"].is_string(), "{frame}");
    }
    alices.send_json(&json!({"type": "ping"})).await;
    next_of_type(&mut alices, "pong").await;
    assert_silent(&mut bobs).await;
    let messages = app.all_messages(&alice, &id).await;
    assert_eq!(messages.len(), 1, "only group_created: {messages:?}");

    alices.send_json(&json!({"type": "message", "content": "still here"})).await;
    assert_eq!(next_user_message(&mut bobs).await["message"]["content"], "still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_deletions_reach_the_sockets() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let id = id_of(&app.conversation(&alice, "Edits", &[&bob]).await);
    let mut alices = app.ws_ready(&id, &alice).await;
    let mut bobs = app.ws_ready(&id, &bob).await;

    let message = id_of(&app.send(&alice, &id, "draft").await);
    for socket in [&mut alices, &mut bobs] {
        assert_eq!(next_user_message(socket).await["message"]["id"], message.as_str());
    }
    app.patch_as(&alice, &message_path(&id, &message), &json!({"content": "final"})).await.assert_status(200);
    for socket in [&mut alices, &mut bobs] {
        let frame = next_of_type(socket, "message.updated").await;
        assert_eq!(frame["message"]["id"], message.as_str());
        assert_eq!(frame["message"]["content"], "final");
        assert!(frame["message"]["edited_at"].is_string(), "{frame}");
    }
    app.delete_as(&alice, &message_path(&id, &message)).await.assert_status(204);
    for socket in [&mut alices, &mut bobs] {
        let frame = next_of_type(socket, "message.deleted").await;
        assert_eq!(frame["message_id"], message.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_and_departures_are_announced() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    let id = id_of(&app.conversation(&alice, "Doors", &[&bob]).await);
    let mut alices = app.ws_ready(&id, &alice).await;
    let mut bobs = app.ws_ready(&id, &bob).await;

    app.added(&alice, &id, &carol, None).await;
    for socket in [&mut alices, &mut bobs] {
        let frame = next_of_type(socket, "participant.joined").await;
        assert_eq!(frame["user_id"], carol.id.as_str());
    }
    let mut carols = app.ws_ready(&id, &carol).await;
    app.send(&carol, &id, "hello").await;
    for socket in [&mut alices, &mut bobs, &mut carols] {
        assert_eq!(next_user_message(socket).await["message"]["content"], "hello");
    }

    app.post_as(&carol, &conversation_sub(&id, "leave/"), &json!({})).await.assert_status(200);
    for socket in [&mut alices, &mut bobs] {
        next_left(socket, &carol.id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_participant_is_cut_off() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    let id = id_of(&app.conversation(&alice, "Cut", &[&bob, &carol]).await);
    let mut alices = app.ws_ready(&id, &alice).await;
    let mut bobs = app.ws_ready(&id, &bob).await;

    app.delete_as(&alice, &participant_path(&id, &bob.id)).await.assert_status(204);
    next_left(&mut alices, &bob.id).await;
    next_left(&mut bobs, &bob.id).await;
    expect_cut_off(&mut bobs).await;

    app.send(&alice, &id, "after bob").await;
    assert_eq!(next_user_message(&mut alices).await["message"]["content"], "after bob");
    assert_silent(&mut bobs).await;

    let mut again = app.ws(&id, &bob.access).await;
    expect_close(&mut again, 4404).await;
    app.get_as(&bob, &conversation_path(&id)).await.assert_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_redis_behave_as_one_service() {
    let db = TestDatabase::create().await;
    let node_a = start_node(&db).await;
    let node_b = start_node(&db).await;
    let alice = node_a.register("alice@example.com").await;
    let bob = node_a.register("bob@example.com").await;
    let carol = node_a.register("carol@example.com").await;
    let dave = node_a.register("dave@example.com").await;
    let id = id_of(&node_a.conversation(&alice, "Cluster", &[&bob, &carol]).await);
    let mut on_a = node_a.ws_ready(&id, &alice).await;
    let mut on_b = node_b.ws_ready(&id, &bob).await;
    let mut carol_on_b = node_b.ws_ready(&id, &carol).await;

    let posted = node_a.send(&alice, &id, "from A").await;
    for socket in [&mut on_a, &mut on_b, &mut carol_on_b] {
        let frame = next_user_message(socket).await;
        assert_eq!(frame["message"]["id"], posted["id"]);
        assert_eq!(frame["message"]["content"], "from A");
    }

    on_b.send_json(&json!({"type": "message", "content": "from a socket on B", "client_id": "b-1"})).await;
    for socket in [&mut on_a, &mut on_b, &mut carol_on_b] {
        let frame = next_user_message(socket).await;
        assert_eq!(frame["client_id"], "b-1");
        assert_eq!(frame["message"]["sender_id"], bob.id.as_str());
    }

    node_b.send(&bob, &id, "REST on B").await;
    assert_eq!(next_user_message(&mut on_a).await["message"]["content"], "REST on B");

    on_a.send_json(&json!({"type": "typing", "is_typing": true})).await;
    assert_eq!(next_of_type(&mut on_b, "typing").await["user_id"], alice.id.as_str());

    node_a.added(&alice, &id, &dave, None).await;
    assert_eq!(next_of_type(&mut on_b, "participant.joined").await["user_id"], dave.id.as_str());

    // A removal on A cuts off a socket on B.
    node_a.delete_as(&alice, &participant_path(&id, &carol.id)).await.assert_status(204);
    next_left(&mut on_b, &carol.id).await;
    next_left(&mut carol_on_b, &carol.id).await;
    expect_cut_off(&mut carol_on_b).await;
    node_a.send(&alice, &id, "after carol").await;
    assert_eq!(next_user_message(&mut on_b).await["message"]["content"], "after carol");
    assert_silent(&mut carol_on_b).await;

    // Both nodes answer the same about the conversation.
    assert_eq!(node_b.detail(&bob, &id).await["participant_count"], 3);
    assert_eq!(ids(&node_a.all_messages(&alice, &id).await), ids(&node_b.all_messages(&bob, &id).await));
}

/// What one of the fifty clients saw.
struct Seen {
    index: usize,
    ids: Vec<String>,
    own_client_ids: Vec<String>,
    after: Option<WsEvent>,
}

async fn run_client(index: usize, user: User, mut socket: TestWebSocket, gate: Arc<tokio::sync::Barrier>) -> Seen {
    gate.wait().await;
    for k in 0..4 {
        socket
            .send_json(&json!({
                "type": "message",
                "content": format!("message {k} from client {index}"),
                "client_id": format!("{index}-{k}"),
            }))
            .await;
    }
    let mut ids = Vec::with_capacity(200);
    let mut own_client_ids = Vec::new();
    while ids.len() < 200 {
        let frame = next_of_type(&mut socket, "message.new").await;
        let message = &frame["message"];
        ids.push(id_of(message));
        if message["sender_id"] == user.id.as_str() {
            own_client_ids.push(frame["client_id"].as_str().unwrap_or("(none)").to_owned());
        }
    }
    let after = socket.next_within(QUIET).await;
    Seen { index, ids, own_client_ids, after }
}

async fn start_fifty(app: &ChatApp) -> (String, Vec<User>, Vec<TestWebSocket>) {
    let users = app.register_many("client", 50).await;
    let others: Vec<&User> = users[1..].iter().collect();
    let id = id_of(&app.conversation(&users[0], "Fifty", &others).await);
    let mut sockets = Vec::with_capacity(users.len());
    for user in &users {
        sockets.push(app.ws_ready(&id, user).await);
    }
    (id, users, sockets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_sending_at_once_all_see_every_message_once_in_one_order() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let (id, users, sockets) = start_fifty(&app).await;
    assert_eq!(app.detail(&users[0], &id).await["participant_count"], 50);

    let gate = Arc::new(tokio::sync::Barrier::new(sockets.len()));
    let clients: Vec<_> = sockets
        .into_iter()
        .zip(users.iter().cloned())
        .enumerate()
        .map(|(index, (socket, user))| tokio::spawn(run_client(index, user, socket, gate.clone())))
        .collect();
    let mut seen = Vec::with_capacity(clients.len());
    for client in clients {
        match client.await {
            Ok(result) => seen.push(result),
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => panic!("a client task failed: {err}"),
        }
    }

    for client in &seen {
        assert_eq!(client.ids.len(), 200, "client {}", client.index);
        assert_unique(&client.ids);
        let mut own = client.own_client_ids.clone();
        own.sort();
        let expected: Vec<String> = (0..4).map(|k| format!("{}-{k}", client.index)).collect();
        assert_eq!(own, expected, "client {} gets its own client_ids back", client.index);
        if let Some(WsEvent::Json(frame)) = &client.after {
            assert_ne!(frame["type"], "message.new", "client {} got an extra message: {frame}", client.index);
        }
    }
    let reference = &seen[0].ids;
    for client in &seen[1..] {
        assert!(client.ids == *reference, "client {} saw another order than client 0", client.index);
    }

    // The order of the sockets is the order of the history (GET is newest first).
    let pages = app.walk_pages(&users[0], &support::messages_path(&id), 100).await;
    assert!(pages.iter().all(|page| page.len() <= 100));
    let mut history: Vec<String> =
        pages.into_iter().flatten().filter(|m| m["message_type"] != "system").map(|m| id_of(&m)).collect();
    history.reverse();
    assert_eq!(history.len(), 200);
    assert_eq!(&history, reference, "sockets and GET messages/ agree on the order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_answers_no_heartbeat_is_dropped_and_a_live_one_is_kept() {
    let db = TestDatabase::create().await;
    let app = support::start_with(&db, |b| b.var("CHAT_HEARTBEAT_SECONDS", "2")).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let id = id_of(&app.conversation(&alice, "Heartbeat", &[&bob]).await);
    let mut dead = app.ws_ready(&id, &alice).await;
    let mut live = app.ws_ready(&id, &bob).await;
    // The live client keeps reading (its library answers the server's pings); the dead one
    // reads nothing, so it answers nothing, for three heartbeats.
    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(7000);
    while tokio::time::Instant::now() < until {
        let _ = live.next_within(std::time::Duration::from_millis(100)).await;
    }
    expect_close(&mut dead, 4408).await;
    live.send_json(&json!({"type": "ping"})).await;
    assert_eq!(next_of_type(&mut live, "pong").await["type"], "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_event_was_lost_is_read_back_and_delivered_in_order() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let id = id_of(&app.conversation(&alice, "Gaps", &[&bob]).await);
    let mut bobs = app.ws_ready(&id, &bob).await;

    // Stored without its event (as when a publish is lost), then one posted normally.
    let store = saas_chat::ChatService::get(app.context()).store().clone();
    let lost = saas_chat::store::NewMessage {
        sender_id: Some(alice.id.parse().unwrap()),
        actor_id: Some(alice.id.parse().unwrap()),
        content: "stored quietly".into(),
        message_type: "text",
        reply_to_id: None,
        attachment_url: None,
        system: None,
        client_id: Some("alice-7".into()),
    };
    store.post(id.parse().unwrap(), &lost).await.unwrap();
    app.send(&alice, &id, "posted normally").await;

    let first = next_user_message(&mut bobs).await;
    let second = next_user_message(&mut bobs).await;
    assert_eq!(first["message"]["content"], "stored quietly", "the gap is filled from the database first");
    assert_eq!(first["client_id"], "alice-7", "a read-back message carries its client_id like a live one");
    assert_eq!(second["message"]["content"], "posted normally");
}
