//! Messages through HTTP: posting, reading, pages, validation, replies, edits and soft
//! deletes, and the immutability of system messages — on SQLite, or PostgreSQL with
//! SAAS_TEST_DATABASE_URL.

mod support;

use axum::http::Method;
use saas_core::testing::TestDatabase;
use serde_json::{Value, json};
use support::{
    MESSAGE_FIELDS, assert_field_error, assert_has_fields, assert_unique, conversation_path, id_of, ids, message_path,
    messages_path, start, system_messages, unknown_id,
};

#[tokio::test]
async fn a_message_is_stored_trimmed_and_read_back() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let id = id_of(&app.conversation(&alice, "Talk", &[&bob]).await);

    let posted = app.post_message(&alice, &id, &json!({"content": "  hello there \n"})).await;
    posted.assert_status(201);
    let message = posted.json();
    assert_has_fields(&message, MESSAGE_FIELDS);
    let message_id = id_of(&message);
    assert_eq!(message["content"], "hello there");
    assert_eq!(message["message_type"], "text");
    assert_eq!(message["sender_id"], alice.id.as_str());
    assert_eq!(message["conversation_id"], id.as_str());
    assert!(message["reply_to_id"].is_null());
    assert_eq!(message["reply_count"], 0);
    assert!(message["attachment_url"].is_null());
    assert!(message["system_event"].is_null());
    assert!(message["edited_at"].is_null());
    assert_eq!(message["is_deleted"], false);
    assert!(message["created_at"].is_string());

    let read = app.message(&bob, &id, &message_id).await;
    for field in ["id", "conversation_id", "sender_id", "content", "message_type", "reply_count", "is_deleted"] {
        assert_eq!(read[field], message[field], "{field} read back");
    }

    let listed = app.all_messages(&bob, &id).await;
    assert_eq!(listed.len(), 2, "the message and group_created: {listed:?}");
    assert_eq!(id_of(&listed[0]), message_id, "newest first");
    assert_eq!(listed[1]["system_event"], "group_created");
    let seen = app.detail(&bob, &id).await;
    assert_eq!(seen["last_message"]["id"], message_id.as_str());
    assert_eq!(seen["last_message"]["content"], "hello there");
    assert!(seen["last_message_at"].is_string());

    let image = app
        .post_message(
            &bob,
            &id,
            &json!({"content": "look", "message_type": "image", "attachment_url": "https://cdn.example.com/a.png"}),
        )
        .await;
    image.assert_status(201);
    assert_eq!(image.json()["message_type"], "image");
    assert_eq!(image.json()["attachment_url"], "https://cdn.example.com/a.png");
    assert_eq!(image.json()["sender_id"], bob.id.as_str());
    let file = app
        .post_message(
            &bob,
            &id,
            &json!({"content": "the doc", "message_type": "file", "attachment_url": "https://cdn.example.com/a.pdf"}),
        )
        .await;
    file.assert_status(201);
    assert_eq!(file.json()["message_type"], "file");

    app.post(&messages_path(&id), &json!({"content": "anonymous"})).await.assert_status(401);
    app.get(&messages_path(&id)).await.assert_status(401);
}

#[tokio::test]
async fn messages_are_listed_newest_first_in_pages_without_duplicates() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let id = id_of(&app.conversation(&alice, "Pages", &[&bob]).await);
    let created = id_of(&app.all_messages(&alice, &id).await[0]);

    let mut sent = Vec::new();
    for i in 0..7 {
        let author = if i % 2 == 0 { &alice } else { &bob };
        sent.push(id_of(&app.send(author, &id, &format!("message {i}")).await));
    }
    let mut expected: Vec<String> = sent.iter().rev().cloned().collect();
    expected.push(created);

    let whole = app.get_as(&bob, &messages_path(&id)).await;
    whole.assert_status(200);
    assert!(whole.json()["next_cursor"].is_null());
    assert_eq!(ids(whole.json()["results"].as_array().unwrap()), expected);

    let pages = app.walk_pages(&bob, &messages_path(&id), 3).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 2]);
    let walked: Vec<String> = pages.iter().flatten().map(id_of).collect();
    assert_unique(&walked);
    assert_eq!(walked, expected);

    let one_by_one: Vec<String> = ids(&app.walk(&alice, &messages_path(&id), 1).await);
    assert_eq!(one_by_one, expected);
}

#[tokio::test]
async fn invalid_messages_are_refused() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let id = id_of(&app.conversation(&alice, "Rules", &[&bob]).await);
    let elsewhere = id_of(&app.conversation(&bob, "Elsewhere", &[&alice]).await);
    let foreign = id_of(&app.send(&alice, &elsewhere, "over there").await);

    let cases: Vec<(Value, &str)> = vec![
        (json!({"content": ""}), "content"),
        (json!({"content": "   \n\t "}), "content"),
        (json!({"content": "x".repeat(10_001)}), "content"),
        (json!({"content": "hi", "message_type": "system"}), "message_type"),
        (
            json!({"content": "pic", "message_type": "image", "attachment_url": "http://cdn.example.com/a.png"}),
            "attachment_url",
        ),
        (json!({"content": "doc", "message_type": "file", "attachment_url": "javascript:alert(1)"}), "attachment_url"),
        (json!({"content": "pic", "message_type": "image"}), "attachment_url"),
        (json!({"content": "doc", "message_type": "file"}), "attachment_url"),
        (json!({"content": "re", "reply_to_id": unknown_id()}), "reply_to_id"),
        (json!({"content": "re", "reply_to_id": foreign}), "reply_to_id"),
    ];
    for (body, field) in cases {
        let response = app.post_message(&alice, &id, &body).await;
        assert_eq!(response.status, 400, "{body} → {}", response.text());
        assert_field_error(&response, field);
    }
    for body in [json!({}), json!({"content": 5}), json!({"content": "hi", "message_type": "video"})] {
        app.post_message(&alice, &id, &body).await.assert_error(400, "validation.failed");
    }
    app.request(Method::POST, &messages_path(&id))
        .bearer(&alice.access)
        .header("content-type", "application/json")
        .body("{\"content\": ")
        .send()
        .await
        .assert_error(400, "validation.failed");
    let listed = app.all_messages(&alice, &id).await;
    assert_eq!(listed.len(), 1, "only group_created: {listed:?}");

    // The limit is 10,000 characters of trimmed content.
    let longest = app.post_message(&alice, &id, &json!({"content": "x".repeat(10_000)})).await;
    longest.assert_status(201);
    assert_eq!(longest.json()["content"].as_str().map(str::len), Some(10_000));
    let padded = app.post_message(&alice, &id, &json!({"content": format!("  {}  ", "y".repeat(10_000))})).await;
    padded.assert_status(201);
    let accents = app.post_message(&alice, &id, &json!({"content": "é".repeat(10_000)})).await;
    accents.assert_status(201);
    assert_eq!(accents.json()["content"].as_str().map(|c| c.chars().count()), Some(10_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_a_reply_attaches_to_the_root() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let id = id_of(&app.conversation(&alice, "Threads", &[&bob]).await);
    let root = id_of(&app.send(&alice, &id, "root").await);

    let first = app.post_message(&bob, &id, &json!({"content": "first reply", "reply_to_id": root})).await;
    first.assert_status(201);
    assert_eq!(first.json()["reply_to_id"], root.as_str());
    let first = id_of(&first.json());
    let nested = app.post_message(&alice, &id, &json!({"content": "reply to the reply", "reply_to_id": first})).await;
    nested.assert_status(201);
    assert_eq!(nested.json()["reply_to_id"], root.as_str(), "threads are one level deep");

    assert_eq!(app.message(&bob, &id, &root).await["reply_count"], 2);
    assert_eq!(app.message(&bob, &id, &first).await["reply_count"], 0);

    // Concurrent replies are all counted.
    let bodies: Vec<Value> = (0..10)
        .map(|i| {
            let target = if i % 2 == 0 { &root } else { &first };
            json!({"content": format!("reply {i}"), "reply_to_id": target})
        })
        .collect();
    let posts = bodies.iter().enumerate().map(|(i, body)| {
        let author = if i % 2 == 0 { &alice } else { &bob };
        app.post_message(author, &id, body)
    });
    for response in futures::future::join_all(posts).await {
        response.assert_status(201);
        assert_eq!(response.json()["reply_to_id"], root.as_str());
    }
    assert_eq!(app.message(&alice, &id, &root).await["reply_count"], 12);
    assert_eq!(app.message(&alice, &id, &first).await["reply_count"], 0);
}

#[tokio::test]
async fn the_sender_edits_and_deletes_a_message_and_nobody_else_does() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let id = id_of(&app.conversation(&alice, "Edits", &[&bob]).await);
    let message = id_of(&app.send(&alice, &id, "first").await);
    let path = message_path(&id, &message);
    let before = app.message(&bob, &id, &message).await;

    let edited = app.patch_as(&alice, &path, &json!({"content": "  second  "})).await;
    edited.assert_status(200);
    let body = edited.json();
    assert_eq!(body["id"], message.as_str());
    assert_eq!(body["content"], "second");
    assert!(body["edited_at"].is_string(), "edited_at is set: {body}");
    let after = app.message(&bob, &id, &message).await;
    assert_eq!(after["content"], "second");
    assert!(after["edited_at"].is_string());
    assert_eq!(after["created_at"], before["created_at"]);
    assert_eq!(after["sender_id"], alice.id.as_str());

    assert_field_error(&app.patch_as(&alice, &path, &json!({"content": "   "})).await, "content");
    assert_field_error(&app.patch_as(&alice, &path, &json!({"content": "z".repeat(10_001)})).await, "content");
    app.patch_as(&bob, &path, &json!({"content": "hijacked"})).await.assert_error(403, "chat.permission_denied");
    app.delete_as(&bob, &path).await.assert_error(403, "chat.permission_denied");
    // The group owner does not edit or delete a member's message either.
    let bobs = id_of(&app.send(&bob, &id, "mine").await);
    app.patch_as(&alice, &message_path(&id, &bobs), &json!({"content": "owner edit"}))
        .await
        .assert_error(403, "chat.permission_denied");
    app.delete_as(&alice, &message_path(&id, &bobs)).await.assert_error(403, "chat.permission_denied");
    assert_eq!(app.message(&alice, &id, &bobs).await["content"], "mine");
    assert_eq!(app.message(&bob, &id, &message).await["content"], "second");

    let deleted = app.delete_as(&alice, &path).await;
    deleted.assert_status(204);
    assert!(deleted.body.is_empty(), "204 has no body: {}", deleted.text());
    let shown = app.message(&bob, &id, &message).await;
    assert_eq!(shown["is_deleted"], true);
    assert_eq!(shown["content"], "");
    let listed = app.all_messages(&bob, &id).await;
    let in_list = listed.iter().find(|m| m["id"] == message.as_str()).expect("a deleted message stays listed");
    assert_eq!(in_list["is_deleted"], true);
    assert_eq!(in_list["content"], "");
    assert!(!listed.iter().any(|m| m["content"] == "second"), "the deleted text is never shown");

    app.patch_as(&alice, &path, &json!({"content": "resurrected"})).await.assert_error(400, "chat.message_deleted");
    assert_eq!(app.message(&alice, &id, &message).await["content"], "");
}

#[tokio::test]
async fn system_messages_cannot_be_edited_or_deleted() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    let id = id_of(&app.conversation(&alice, "Ledger", &[&bob]).await);
    app.added(&alice, &id, &carol, Some("admin")).await;

    let messages = app.all_messages(&alice, &id).await;
    let created = id_of(system_messages(&messages, "group_created")[0]);
    let added = id_of(system_messages(&messages, "participant_added")[0]);
    for system in [&created, &added] {
        let path = message_path(&id, system);
        for user in [&alice, &bob, &carol] {
            app.patch_as(user, &path, &json!({"content": "rewritten"}))
                .await
                .assert_error(403, "chat.permission_denied");
            app.delete_as(user, &path).await.assert_error(403, "chat.permission_denied");
        }
        let still = app.message(&bob, &id, system).await;
        assert_eq!(still["is_deleted"], false);
        assert!(still["edited_at"].is_null());
        assert_eq!(still["message_type"], "system");
        assert_ne!(still["content"], "rewritten");
    }
    let added_message = app.message(&bob, &id, &added).await;
    let data = &added_message["system_data"];
    assert_eq!(data["user_id"], carol.id.as_str());
    assert_eq!(data["added_by_id"], alice.id.as_str());
}

#[tokio::test]
async fn unknown_messages_and_messages_of_other_conversations_are_not_found() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let id = id_of(&app.conversation(&alice, "Here", &[&bob]).await);
    let other = id_of(&app.conversation(&alice, "There", &[&bob]).await);
    let theirs = id_of(&app.send(&alice, &other, "over there").await);

    for message in [unknown_id(), theirs.clone()] {
        let path = message_path(&id, &message);
        app.get_as(&alice, &path).await.assert_error(404, "not_found");
        app.patch_as(&alice, &path, &json!({"content": "x"})).await.assert_error(404, "not_found");
        app.delete_as(&alice, &path).await.assert_error(404, "not_found");
    }
    assert_eq!(app.message(&bob, &other, &theirs).await["content"], "over there");
    app.get_as(&alice, &conversation_path(&id)).await.assert_status(200);
}
