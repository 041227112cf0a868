//! Shared helpers of the chat tests: an app with the auth and chat modules, users,
//! conversations, messages, cursor walks and WebSocket shortcuts.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::ops::Deref;
use std::time::Duration;

use axum::http::Method;
use saas_auth::AuthModule;
use saas_chat::ChatModule;
use saas_core::testing::{TestApp, TestAppBuilder, TestDatabase, TestResponse, TestWebSocket, WsEvent, redis_url};
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery";
/// How long to wait for a frame that must come.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long to listen when asserting that nothing comes.
pub const QUIET: Duration = Duration::from_millis(300);

/// Every field of a Conversation object.
pub const CONVERSATION_FIELDS: &[&str] = &[
    "id",
    "conversation_type",
    "title",
    "display_name",
    "participant_count",
    "created_by",
    "other_participants",
    "last_message",
    "last_message_at",
    "unread_count",
    "current_user_role",
    "created_at",
    "updated_at",
];

/// Every field of a Participant object.
pub const PARTICIPANT_FIELDS: &[&str] = &["id", "user_id", "role", "joined_at", "last_read_at"];

/// Every field of a Message object.
pub const MESSAGE_FIELDS: &[&str] = &[
    "id",
    "conversation_id",
    "sender_id",
    "content",
    "message_type",
    "reply_to_id",
    "reply_count",
    "attachment_url",
    "system_event",
    "created_at",
    "edited_at",
    "is_deleted",
];

/// A test app with the auth and chat modules.
pub struct ChatApp {
    pub app: TestApp,
}

impl Deref for ChatApp {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

/// A registered user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub access: String,
    pub refresh: String,
    pub email: String,
}

pub fn builder() -> TestAppBuilder {
    TestApp::builder()
        .module(AuthModule::default())
        .module(ChatModule::default())
        .var("AUTH_RATE_LIMIT_PER_MINUTE", "100000")
}

pub async fn start(db: &TestDatabase) -> ChatApp {
    start_with(db, |b| b).await
}

pub async fn start_with(db: &TestDatabase, adjust: impl FnOnce(TestAppBuilder) -> TestAppBuilder) -> ChatApp {
    ChatApp { app: adjust(builder()).start(db).await }
}

/// A node of a multi-node service: this database, Redis with the database's prefix.
pub async fn start_node(db: &TestDatabase) -> ChatApp {
    let prefix = db.redis_prefix();
    start_with(db, move |b| b.redis(redis_url(), prefix)).await
}

// ---- paths ----

pub fn conversations_path() -> String {
    "/api/v1/chat/conversations/".to_owned()
}

pub fn conversation_path(id: &str) -> String {
    format!("/api/v1/chat/conversations/{id}/")
}

/// `/api/v1/chat/conversations/{id}/{rest}` (`rest` like `"read/"`).
pub fn conversation_sub(id: &str, rest: &str) -> String {
    format!("/api/v1/chat/conversations/{id}/{rest}")
}

pub fn participants_path(id: &str) -> String {
    conversation_sub(id, "participants/")
}

pub fn participant_path(id: &str, user_id: &str) -> String {
    conversation_sub(id, &format!("participants/{user_id}/"))
}

pub fn messages_path(id: &str) -> String {
    conversation_sub(id, "messages/")
}

pub fn message_path(id: &str, message_id: &str) -> String {
    conversation_sub(id, &format!("messages/{message_id}/"))
}

pub fn ws_path(conversation_id: &str, token: &str) -> String {
    format!("/ws/chat/{conversation_id}/?token={}", encode(token))
}

/// Percent-encodes a query value (cursors are opaque).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A UUID no row has.
pub fn unknown_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

// ---- JSON helpers ----

/// The `"id"` of an object, as a string.
pub fn id_of(value: &Value) -> String {
    value["id"].as_str().unwrap_or_else(|| panic!("no string id in {value}")).to_owned()
}

/// The ids of a list of objects, in order.
pub fn ids(values: &[Value]) -> Vec<String> {
    values.iter().map(id_of).collect()
}

/// Asserts a 400 `validation.failed` naming `field` in `details.fields`.
#[track_caller]
pub fn assert_field_error(response: &TestResponse, field: &str) {
    let error = response.assert_error(400, "validation.failed");
    let messages = &error["details"]["fields"][field];
    assert!(
        messages.as_array().is_some_and(|list| !list.is_empty()),
        "expected a message for field {field:?} in {error}"
    );
}

/// Asserts that `object` has every one of `fields`.
#[track_caller]
pub fn assert_has_fields(object: &Value, fields: &[&str]) {
    for field in fields {
        assert!(object.get(*field).is_some(), "{field:?} missing from {object}");
    }
}

/// The system messages of `event` among `messages`.
pub fn system_messages<'a>(messages: &'a [Value], event: &str) -> Vec<&'a Value> {
    messages.iter().filter(|m| m["message_type"] == "system" && m["system_event"] == event).collect()
}

/// Participants as `user_id → role`.
pub fn roles(participants: &[Value]) -> HashMap<String, Value> {
    participants
        .iter()
        .map(|p| (p["user_id"].as_str().unwrap_or_else(|| panic!("no user_id in {p}")).to_owned(), p["role"].clone()))
        .collect()
}

/// The participant of `user_id` among `participants`.
#[track_caller]
pub fn participant_of<'a>(participants: &'a [Value], user_id: &str) -> &'a Value {
    participants
        .iter()
        .find(|p| p["user_id"] == user_id)
        .unwrap_or_else(|| panic!("{user_id} is not among {participants:?}"))
}

/// Asserts no id occurs twice.
#[track_caller]
pub fn assert_unique(ids: &[String]) {
    let set: HashSet<&String> = ids.iter().collect();
    assert_eq!(set.len(), ids.len(), "duplicates in {ids:?}");
}

/// A short pause so that timestamps taken before and after differ.
pub async fn pause() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

impl ChatApp {
    // ---- users ----

    /// Registers `email` with the test password.
    pub async fn register(&self, email: &str) -> User {
        let response = self.post("/api/v1/auth/registration/", &json!({"email": email, "password": PASSWORD})).await;
        response.assert_status(201);
        let body = response.json();
        let text = |value: &Value| value.as_str().unwrap_or_else(|| panic!("not a string in {body}")).to_owned();
        User {
            id: text(&body["user"]["id"]),
            access: text(&body["access"]),
            refresh: text(&body["refresh"]),
            email: text(&body["user"]["email"]),
        }
    }

    /// Registers `{prefix}{i}@example.com` for i in 0..n, concurrently; in order of i.
    pub async fn register_many(&self, prefix: &str, n: usize) -> Vec<User> {
        let mut users = Vec::with_capacity(n);
        let indices: Vec<usize> = (0..n).collect();
        // A few at a time: registration hashes a password.
        for chunk in indices.chunks(8) {
            let batch = chunk.iter().map(|i| {
                let email = format!("{prefix}{i}@example.com");
                async move { self.register(&email).await }
            });
            users.extend(futures::future::join_all(batch).await);
        }
        users
    }

    /// Sets the user's profile names (a username is required by the profile rules).
    pub async fn set_names(&self, user: &User, username: &str, first_name: &str, last_name: &str) {
        self.patch_as(
            user,
            "/api/v1/auth/profile/",
            &json!({"username": username, "first_name": first_name, "last_name": last_name}),
        )
        .await
        .assert_status(200);
    }

    /// Deactivates the user's account.
    pub async fn deactivate(&self, user: &User) {
        self.post_as(user, "/api/v1/auth/deactivate/", &json!({})).await.assert_status(200);
    }

    // ---- HTTP as a user ----

    pub async fn call_as(&self, user: &User, method: Method, path: &str, body: Option<&Value>) -> TestResponse {
        let request = self.request(method, path).bearer(&user.access);
        match body {
            Some(body) => request.json(body).send().await,
            None => request.send().await,
        }
    }

    pub async fn get_as(&self, user: &User, path: &str) -> TestResponse {
        self.call_as(user, Method::GET, path, None).await
    }

    pub async fn post_as(&self, user: &User, path: &str, body: &Value) -> TestResponse {
        self.call_as(user, Method::POST, path, Some(body)).await
    }

    pub async fn patch_as(&self, user: &User, path: &str, body: &Value) -> TestResponse {
        self.call_as(user, Method::PATCH, path, Some(body)).await
    }

    pub async fn delete_as(&self, user: &User, path: &str) -> TestResponse {
        self.call_as(user, Method::DELETE, path, None).await
    }

    // ---- conversations ----

    /// `owner` creates a group titled `title` with `members`; returns the 201 body.
    pub async fn conversation(&self, owner: &User, title: &str, members: &[&User]) -> Value {
        let response = self.create_group(owner, title, members).await;
        response.assert_status(201);
        response.json()
    }

    /// `owner` asks for a group (any answer).
    pub async fn create_group(&self, owner: &User, title: &str, members: &[&User]) -> TestResponse {
        let participant_ids: Vec<&str> = members.iter().map(|u| u.id.as_str()).collect();
        self.post_as(
            owner,
            &conversations_path(),
            &json!({"conversation_type": "group", "title": title, "participant_ids": participant_ids}),
        )
        .await
    }

    /// `a` asks for the direct conversation with `b` (201 new, 200 existing).
    pub async fn create_direct(&self, a: &User, b: &User) -> TestResponse {
        self.post_as(a, &conversations_path(), &json!({"conversation_type": "direct", "participant_ids": [b.id]})).await
    }

    /// The direct conversation of `a` and `b` (created when needed).
    pub async fn direct(&self, a: &User, b: &User) -> Value {
        let response = self.create_direct(a, b).await;
        assert!(response.status == 200 || response.status == 201, "direct: {} {}", response.status, response.text());
        response.json()
    }

    /// The conversation as `user` sees it (200).
    pub async fn detail(&self, user: &User, conversation_id: &str) -> Value {
        let response = self.get_as(user, &conversation_path(conversation_id)).await;
        response.assert_status(200);
        response.json()
    }

    /// `by` adds `user` (with `role` when given); any answer.
    pub async fn add(&self, by: &User, conversation_id: &str, user: &User, role: Option<&str>) -> TestResponse {
        let body = match role {
            Some(role) => json!({"user_id": user.id, "role": role}),
            None => json!({"user_id": user.id}),
        };
        self.post_as(by, &participants_path(conversation_id), &body).await
    }

    /// `by` adds `user` with `role` and expects 201; returns the Participant.
    pub async fn added(&self, by: &User, conversation_id: &str, user: &User, role: Option<&str>) -> Value {
        let response = self.add(by, conversation_id, user, role).await;
        response.assert_status(201);
        response.json()
    }

    /// The participants as `user` sees them, oldest first (every page).
    pub async fn participants(&self, user: &User, conversation_id: &str) -> Vec<Value> {
        self.walk(user, &participants_path(conversation_id), 100).await
    }

    /// `user` marks the conversation read (optionally up to `message_id`); returns the 200 body.
    pub async fn mark_read(&self, user: &User, conversation_id: &str, message_id: Option<&str>) -> Value {
        let body = match message_id {
            Some(id) => json!({"message_id": id}),
            None => json!({}),
        };
        let response = self.post_as(user, &conversation_sub(conversation_id, "read/"), &body).await;
        response.assert_status(200);
        response.json()
    }

    /// The caller's unread count in a conversation.
    pub async fn unread(&self, user: &User, conversation_id: &str) -> i64 {
        let detail = self.detail(user, conversation_id).await;
        detail["unread_count"].as_i64().unwrap_or_else(|| panic!("no unread_count in {detail}"))
    }

    // ---- messages ----

    /// `by` posts a text message over REST; returns the 201 Message.
    pub async fn send(&self, by: &User, conversation_id: &str, content: &str) -> Value {
        let response = self.post_message(by, conversation_id, &json!({"content": content})).await;
        response.assert_status(201);
        response.json()
    }

    /// `by` posts `body` to the conversation's messages (any answer).
    pub async fn post_message(&self, by: &User, conversation_id: &str, body: &Value) -> TestResponse {
        self.post_as(by, &messages_path(conversation_id), body).await
    }

    /// One message as `user` sees it (200).
    pub async fn message(&self, user: &User, conversation_id: &str, message_id: &str) -> Value {
        let response = self.get_as(user, &message_path(conversation_id, message_id)).await;
        response.assert_status(200);
        response.json()
    }

    /// Every message of the conversation, newest first, walking pages of 100.
    pub async fn all_messages(&self, user: &User, conversation_id: &str) -> Vec<Value> {
        self.walk(user, &messages_path(conversation_id), 100).await
    }

    /// Walks a cursor-paginated list (`path` without a query) with `limit`; every item, in order.
    pub async fn walk(&self, user: &User, path: &str, limit: usize) -> Vec<Value> {
        self.walk_pages(user, path, limit).await.into_iter().flatten().collect()
    }

    /// Walks a cursor-paginated list; each page's results.
    pub async fn walk_pages(&self, user: &User, path: &str, limit: usize) -> Vec<Vec<Value>> {
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            assert!(pages.len() < 10_000, "{path} never ends");
            let url = match &cursor {
                Some(cursor) => format!("{path}?limit={limit}&cursor={}", encode(cursor)),
                None => format!("{path}?limit={limit}"),
            };
            let response = self.get_as(user, &url).await;
            response.assert_status(200);
            let body = response.json();
            let results = body["results"].as_array().unwrap_or_else(|| panic!("no results in {body}")).clone();
            assert!(results.len() <= limit, "page over the limit {limit}: {body}");
            pages.push(results);
            match &body["next_cursor"] {
                Value::Null => return pages,
                Value::String(next) => cursor = Some(next.clone()),
                other => panic!("next_cursor is a string or null, not {other}"),
            }
        }
    }

    // ---- sockets ----

    /// Opens `/ws/chat/{conversation_id}/?token=…` (accepted; maybe closed right after).
    pub async fn ws(&self, conversation_id: &str, token: &str) -> TestWebSocket {
        self.websocket(&ws_path(conversation_id, token)).await
    }

    /// Opens the user's socket on the conversation and waits until it answers a ping, so
    /// that it receives everything that happens afterwards.
    pub async fn ws_ready(&self, conversation_id: &str, user: &User) -> TestWebSocket {
        let mut socket = self.ws(conversation_id, &user.access).await;
        socket.send_json(&json!({"type": "ping"})).await;
        next_of_type(&mut socket, "pong").await;
        socket
    }
}

// ---- frames ----

/// The next JSON frame for which `wanted` holds, skipping others, within [`WAIT`].
pub async fn next_matching(socket: &mut TestWebSocket, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut skipped: Vec<Value> = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match socket.next_within(left).await {
            Some(WsEvent::Json(frame)) if wanted(&frame) => return frame,
            Some(WsEvent::Json(frame)) => skipped.push(frame),
            Some(WsEvent::Text(text)) => skipped.push(Value::String(text)),
            Some(WsEvent::Closed(code)) => {
                panic!("the socket closed ({code:?}) while waiting for {what}; skipped {skipped:?}")
            }
            None => panic!("no {what} within {WAIT:?}; skipped {skipped:?}"),
        }
    }
}

/// The next frame of `type` `kind`, skipping frames of other types.
pub async fn next_of_type(socket: &mut TestWebSocket, kind: &str) -> Value {
    next_matching(socket, &format!("a {kind:?} frame"), |frame| frame["type"] == kind).await
}

/// The next `message.new` frame carrying a non-system message.
pub async fn next_user_message(socket: &mut TestWebSocket) -> Value {
    next_matching(socket, "a message.new frame of a user message", |frame| {
        frame["type"] == "message.new" && frame["message"]["message_type"] != "system"
    })
    .await
}

/// Asserts the socket is closed with `code` (error frames before the close are tolerated).
pub async fn expect_close(socket: &mut TestWebSocket, code: u16) {
    loop {
        match socket.next_within(WAIT).await {
            Some(WsEvent::Closed(got)) => {
                assert_eq!(got, Some(code), "closed with the wrong code");
                return;
            }
            Some(WsEvent::Json(frame)) if frame["type"] == "error" => continue,
            other => panic!("expected a close with {code}, got {other:?}"),
        }
    }
}

/// Asserts no text frame arrives within [`QUIET`]; returns what happened instead
/// (`None`, or a close).
pub async fn assert_silent(socket: &mut TestWebSocket) -> Option<WsEvent> {
    let event = socket.next_within(QUIET).await;
    assert!(!matches!(event, Some(WsEvent::Json(_)) | Some(WsEvent::Text(_))), "expected nothing, got {event:?}");
    event
}

/// Whether a frame's `client_id` is absent or null.
pub fn has_no_client_id(frame: &Value) -> bool {
    frame.get("client_id").is_none_or(Value::is_null)
}
