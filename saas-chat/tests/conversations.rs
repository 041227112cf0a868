//! Conversations through HTTP: creation and validation, direct de-duplication, the rights
//! of owners, admins, members and outsiders, participants, leaving and hand-over, unread
//! counts, lists and their pages — on SQLite, or PostgreSQL with SAAS_TEST_DATABASE_URL.

mod support;

use std::collections::{HashMap, HashSet};

use axum::http::Method;
use saas_core::testing::{TestDatabase, TestResponse};
use serde_json::{Value, json};
use support::{
    CONVERSATION_FIELDS, ChatApp, PARTICIPANT_FIELDS, User, assert_field_error, assert_has_fields, assert_unique,
    conversation_path, conversation_sub, conversations_path, id_of, ids, message_path, messages_path, participant_of,
    participant_path, participants_path, pause, roles, start, system_messages, unknown_id,
};

async fn create(app: &ChatApp, user: &User, body: Value) -> TestResponse {
    app.post_as(user, &conversations_path(), &body).await
}

async fn leave(app: &ChatApp, user: &User, conversation_id: &str) -> TestResponse {
    app.post_as(user, &conversation_sub(conversation_id, "leave/"), &json!({})).await
}

fn other_ids(conversation: &Value) -> HashSet<String> {
    conversation["other_participants"]
        .as_array()
        .unwrap_or_else(|| panic!("other_participants is a list: {conversation}"))
        .iter()
        .map(id_of)
        .collect()
}

fn other<'a>(conversation: &'a Value, user: &User) -> &'a Value {
    conversation["other_participants"]
        .as_array()
        .and_then(|list| list.iter().find(|p| p["id"] == user.id.as_str()))
        .unwrap_or_else(|| panic!("{} is not among the other participants of {conversation}", user.email))
}

async fn listed_ids(app: &ChatApp, user: &User) -> Vec<String> {
    ids(&app.walk(user, &conversations_path(), 100).await)
}

#[tokio::test]
async fn a_group_starts_with_its_creator_as_owner_and_a_group_created_message() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    app.set_names(&bob, "bob_b", "Bob", "Builder").await;

    let group = app.conversation(&alice, "Team", &[&bob, &carol]).await;
    assert_has_fields(&group, CONVERSATION_FIELDS);
    let id = id_of(&group);
    assert_eq!(group["conversation_type"], "group");
    assert_eq!(group["title"], "Team");
    assert_eq!(group["display_name"], "Team");
    assert_eq!(group["participant_count"], 3);
    assert_eq!(group["created_by"], alice.id.as_str());
    assert_eq!(group["current_user_role"], "owner");
    assert_eq!(other_ids(&group), HashSet::from([bob.id.clone(), carol.id.clone()]));
    assert_eq!(other(&group, &bob)["email"], "bob@example.com");
    assert_eq!(other(&group, &bob)["display_name"], "Bob Builder");
    assert_eq!(other(&group, &carol)["display_name"], "carol@example.com");

    let seen_by_bob = app.detail(&bob, &id).await;
    assert_has_fields(&seen_by_bob, CONVERSATION_FIELDS);
    assert_eq!(seen_by_bob["current_user_role"], "member");
    assert_eq!(seen_by_bob["participant_count"], 3);
    assert_eq!(other_ids(&seen_by_bob), HashSet::from([alice.id.clone(), carol.id.clone()]));
    assert_eq!(other(&seen_by_bob, &alice)["display_name"], "alice@example.com");

    let messages = app.all_messages(&alice, &id).await;
    assert_eq!(messages.len(), 1, "one group_created message: {messages:?}");
    let created = &messages[0];
    assert_eq!(created["message_type"], "system");
    assert_eq!(created["system_event"], "group_created");
    assert!(created["sender_id"].is_null(), "system messages have no sender: {created}");
    assert_eq!(created["system_data"]["title"], "Team");
    assert_eq!(created["conversation_id"], id.as_str());
    assert_eq!(seen_by_bob["last_message"]["id"], created["id"]);
    assert!(seen_by_bob["last_message_at"].is_string());

    let participants = app.participants(&alice, &id).await;
    for participant in &participants {
        assert_has_fields(participant, PARTICIPANT_FIELDS);
        assert!(participant["joined_at"].is_string());
    }
    assert_eq!(
        roles(&participants),
        HashMap::from([
            (alice.id.clone(), json!("owner")),
            (bob.id.clone(), json!("member")),
            (carol.id.clone(), json!("member")),
        ])
    );
}

#[tokio::test]
async fn a_direct_conversation_is_unique_per_pair_and_named_after_the_other_person() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    app.set_names(&bob, "bob_b", "Bob", "Builder").await;
    app.patch_as(&carol, "/api/v1/auth/profile/", &json!({"username": "carol_c"})).await.assert_status(200);

    let first = app.create_direct(&alice, &bob).await;
    first.assert_status(201);
    let direct = first.json();
    assert_has_fields(&direct, CONVERSATION_FIELDS);
    let id = id_of(&direct);
    assert_eq!(direct["conversation_type"], "direct");
    assert!(direct["title"].is_null());
    assert!(direct["current_user_role"].is_null(), "no roles in direct conversations: {direct}");
    assert_eq!(direct["participant_count"], 2);
    assert_eq!(direct["display_name"], "Bob Builder", "the full name first");
    assert_eq!(other_ids(&direct), HashSet::from([bob.id.clone()]));
    assert_eq!(other(&direct, &bob)["email"], "bob@example.com");
    assert_eq!(other(&direct, &bob)["display_name"], "Bob Builder");
    assert!(direct["last_message"].is_null(), "a new direct conversation has no message: {direct}");
    assert!(app.all_messages(&alice, &id).await.is_empty());

    let again = app.create_direct(&alice, &bob).await;
    again.assert_status(200);
    assert_eq!(id_of(&again.json()), id);
    let reverse = app.create_direct(&bob, &alice).await;
    reverse.assert_status(200);
    assert_eq!(id_of(&reverse.json()), id);
    assert_eq!(reverse.json()["display_name"], "alice@example.com", "the email when there is no name");
    assert!(reverse.json()["current_user_role"].is_null());

    for participant in app.participants(&bob, &id).await {
        assert_has_fields(&participant, PARTICIPANT_FIELDS);
        assert!(participant["role"].is_null(), "no roles in direct conversations: {participant}");
    }

    let with_carol = app.create_direct(&alice, &carol).await;
    with_carol.assert_status(201);
    assert_eq!(with_carol.json()["display_name"], "carol_c", "the username when there is no full name");
    assert_ne!(id_of(&with_carol.json()), id);

    let mine = listed_ids(&app, &alice).await;
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert_eq!(listed_ids(&app, &bob).await, vec![id.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creations_of_one_pair_make_one_direct_conversation() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let users = app.register_many("pair", 6).await;
    let pairs: Vec<(&User, &User)> = users.chunks(2).map(|pair| (&pair[0], &pair[1])).collect();

    let requests =
        pairs.iter().flat_map(|&(a, b)| [(a, b), (b, a), (a, b), (b, a)]).map(|(from, to)| app.create_direct(from, to));
    let responses = futures::future::join_all(requests).await;

    for (answers, (a, b)) in responses.chunks(4).zip(&pairs) {
        let mut statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
        statuses.sort_unstable();
        assert_eq!(statuses, vec![200, 200, 200, 201], "one creation, then the same conversation: {answers:?}");
        let ids: HashSet<String> = answers.iter().map(|r| id_of(&r.json())).collect();
        assert_eq!(ids.len(), 1, "one conversation per pair: {ids:?}");
        let id = ids.into_iter().next().unwrap();
        assert_eq!(listed_ids(&app, a).await, vec![id.clone()]);
        assert_eq!(listed_ids(&app, b).await, vec![id.clone()]);
        assert_eq!(app.detail(a, &id).await["participant_count"], 2);
    }
}

#[tokio::test]
async fn creating_a_conversation_is_validated() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    let gone = app.register("gone@example.com").await;
    app.deactivate(&gone).await;
    let nobody = unknown_id();

    let cases: Vec<(Value, &str)> = vec![
        (json!({"conversation_type": "group", "participant_ids": [bob.id]}), "title"),
        (json!({"conversation_type": "group", "title": "", "participant_ids": [bob.id]}), "title"),
        (json!({"conversation_type": "group", "title": "x".repeat(101), "participant_ids": [bob.id]}), "title"),
        (json!({"conversation_type": "direct", "title": "Hi", "participant_ids": [bob.id]}), "title"),
        (json!({"conversation_type": "direct", "participant_ids": [bob.id, carol.id]}), "participant_ids"),
        (json!({"conversation_type": "direct", "participant_ids": []}), "participant_ids"),
        (json!({"conversation_type": "direct", "participant_ids": [alice.id]}), "participant_ids"),
        (json!({"conversation_type": "group", "title": "T", "participant_ids": [bob.id, alice.id]}), "participant_ids"),
        (json!({"conversation_type": "direct", "participant_ids": [nobody]}), "participant_ids"),
        (json!({"conversation_type": "group", "title": "T", "participant_ids": [bob.id, nobody]}), "participant_ids"),
        (json!({"conversation_type": "direct", "participant_ids": [gone.id]}), "participant_ids"),
        (json!({"conversation_type": "group", "title": "T", "participant_ids": [bob.id, gone.id]}), "participant_ids"),
        (json!({"conversation_type": "channel", "title": "T", "participant_ids": [bob.id]}), "conversation_type"),
    ];
    for (body, field) in cases {
        let response = create(&app, &alice, body.clone()).await;
        assert_eq!(response.status, 400, "{body} → {}", response.text());
        assert_field_error(&response, field);
    }

    // Shapes that cannot be read at all are 400 too, never a 5xx.
    for body in [
        json!({"participant_ids": [bob.id], "title": "T"}),
        json!({"conversation_type": "group", "title": "T", "participant_ids": "everyone"}),
        json!({"conversation_type": "group", "title": "T", "participant_ids": ["not-a-uuid"]}),
    ] {
        create(&app, &alice, body).await.assert_error(400, "validation.failed");
    }
    app.request(Method::POST, &conversations_path())
        .bearer(&alice.access)
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .assert_error(400, "validation.failed");
    app.post(&conversations_path(), &json!({"conversation_type": "direct", "participant_ids": [bob.id]}))
        .await
        .assert_status(401);
    app.get(&conversations_path()).await.assert_status(401);

    assert!(listed_ids(&app, &alice).await.is_empty(), "nothing was created");

    let longest = create(
        &app,
        &alice,
        json!({"conversation_type": "group", "title": "x".repeat(100), "participant_ids": [bob.id]}),
    )
    .await;
    longest.assert_status(201);
    assert_eq!(longest.json()["title"].as_str().map(str::len), Some(100));
}

#[tokio::test]
async fn the_list_shows_the_most_recently_active_first_and_pages_without_duplicates() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    let dave = app.register("dave@example.com").await;

    let mut groups = Vec::new();
    for i in 0..4 {
        let member = if i % 2 == 0 { &bob } else { &carol };
        groups.push(id_of(&app.conversation(&alice, &format!("Group {i}"), &[member]).await));
        pause().await;
    }
    let direct = id_of(&app.direct(&alice, &bob).await);
    pause().await;
    app.send(&alice, &groups[2], "wake up").await;
    pause().await;
    app.send(&bob, &direct, "hello").await;
    pause().await;
    app.send(&bob, &groups[0], "latest").await;

    let expected = vec![groups[0].clone(), direct.clone(), groups[2].clone(), groups[3].clone(), groups[1].clone()];
    let first_page = app.get_as(&alice, &conversations_path()).await;
    first_page.assert_status(200);
    let body = first_page.json();
    assert!(body["next_cursor"].is_null());
    let results = body["results"].as_array().unwrap();
    assert_eq!(ids(results), expected);
    for conversation in results {
        assert_has_fields(conversation, CONVERSATION_FIELDS);
    }
    assert_eq!(results[0]["last_message"]["content"], "latest");

    let pages = app.walk_pages(&alice, &conversations_path(), 2).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1]);
    let walked: Vec<String> = pages.iter().flatten().map(id_of).collect();
    assert_unique(&walked);
    assert_eq!(walked, expected);

    assert_eq!(listed_ids(&app, &bob).await, vec![groups[0].clone(), direct.clone(), groups[2].clone()]);
    assert_eq!(listed_ids(&app, &carol).await, vec![groups[3].clone(), groups[1].clone()]);
    let empty = app.get_as(&dave, &conversations_path()).await;
    empty.assert_status(200);
    assert_eq!(empty.json(), json!({"results": [], "next_cursor": null}));
}

#[tokio::test]
async fn unread_counts_follow_messages_from_others_and_reads() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    let dave = app.register("dave@example.com").await;
    let id = id_of(&app.conversation(&alice, "Reading", &[&bob, &carol]).await);

    let read = app.mark_read(&bob, &id, None).await;
    assert_eq!(read["id"], id.as_str());
    assert_eq!(read["unread_count"], 0);
    assert_has_fields(&read, CONVERSATION_FIELDS);
    assert_eq!(app.mark_read(&alice, &id, None).await["unread_count"], 0);

    let mut sent = Vec::new();
    for i in 1..=3 {
        sent.push(app.send(&alice, &id, &format!("m{i}")).await);
    }
    assert_eq!(app.unread(&bob, &id).await, 3);
    assert_eq!(app.unread(&alice, &id).await, 0, "one's own messages are never unread");
    let listed = app.walk(&bob, &conversations_path(), 100).await;
    let entry = listed.iter().find(|c| c["id"] == id.as_str()).expect("listed");
    assert_eq!(entry["unread_count"], 3, "the list shows the same count");
    sent.push(app.send(&alice, &id, "m4").await);
    assert_eq!(app.unread(&bob, &id).await, 4);

    // Read up to the second message: the two after it stay unread.
    let up_to = app.mark_read(&bob, &id, Some(id_of(&sent[1]).as_str())).await;
    assert_eq!(up_to["unread_count"], 2);
    assert_eq!(app.unread(&bob, &id).await, 2);
    let all = app.mark_read(&bob, &id, Some(id_of(&sent[3]).as_str())).await;
    assert_eq!(all["unread_count"], 0);
    assert_eq!(app.unread(&bob, &id).await, 0);

    app.send(&bob, &id, "thanks").await;
    assert_eq!(app.unread(&bob, &id).await, 0);
    assert_eq!(app.unread(&alice, &id).await, 1);

    // System messages count.
    app.added(&alice, &id, &dave, None).await;
    assert_eq!(app.unread(&bob, &id).await, 1, "the participant_added message is unread");
    assert_eq!(app.mark_read(&bob, &id, None).await["unread_count"], 0);
    assert_eq!(app.unread(&bob, &id).await, 0);

    let participants = app.participants(&alice, &id).await;
    assert!(participant_of(&participants, &bob.id)["last_read_at"].is_string());
}

#[tokio::test]
async fn when_the_owner_leaves_the_oldest_admin_becomes_owner() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    let dave = app.register("dave@example.com").await;
    let id = id_of(&app.conversation(&alice, "Hand-over", &[&bob]).await);
    pause().await;
    app.added(&alice, &id, &carol, Some("admin")).await;
    pause().await;
    app.added(&alice, &id, &dave, Some("admin")).await;

    let left = leave(&app, &alice, &id).await;
    left.assert_status(200);
    assert!(left.json()["detail"].is_string(), "{}", left.text());

    app.get_as(&alice, &conversation_path(&id)).await.assert_error(404, "not_found");
    app.get_as(&alice, &messages_path(&id)).await.assert_error(404, "not_found");
    assert!(!listed_ids(&app, &alice).await.contains(&id));

    let seen = app.detail(&carol, &id).await;
    assert_eq!(seen["current_user_role"], "owner", "the oldest admin, not the older member");
    assert_eq!(seen["participant_count"], 3);
    assert_eq!(app.detail(&dave, &id).await["current_user_role"], "admin");
    assert_eq!(
        roles(&app.participants(&bob, &id).await),
        HashMap::from([
            (carol.id.clone(), json!("owner")),
            (dave.id.clone(), json!("admin")),
            (bob.id.clone(), json!("member")),
        ])
    );

    let messages = app.all_messages(&carol, &id).await;
    let removed = system_messages(&messages, "participant_removed");
    assert_eq!(removed.len(), 1, "{messages:?}");
    assert_eq!(removed[0]["system_data"]["user_id"], alice.id.as_str());
    assert_eq!(removed[0]["system_data"]["reason"], "left");
    assert!(removed[0]["sender_id"].is_null());
    let transferred = system_messages(&messages, "ownership_transferred");
    assert_eq!(transferred.len(), 1, "{messages:?}");
    assert_eq!(transferred[0]["system_data"]["from_user_id"], alice.id.as_str());
    assert_eq!(transferred[0]["system_data"]["to_user_id"], carol.id.as_str());
    assert_eq!(transferred[0]["system_data"]["reason"], "departure");

    // A member leaving changes no role; rejoining starts a new participation.
    leave(&app, &bob, &id).await.assert_status(200);
    assert_eq!(app.detail(&carol, &id).await["participant_count"], 2);
    assert_eq!(app.detail(&carol, &id).await["current_user_role"], "owner");
    let back = app.added(&carol, &id, &alice, None).await;
    assert_eq!(back["role"], "member");
    assert_eq!(app.detail(&alice, &id).await["current_user_role"], "member");
    assert_eq!(app.detail(&carol, &id).await["participant_count"], 3);
}

#[tokio::test]
async fn without_an_admin_the_oldest_member_becomes_owner() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    let dave = app.register("dave@example.com").await;
    let id = id_of(&app.conversation(&alice, "Hand-over", &[&bob]).await);
    pause().await;
    app.added(&alice, &id, &carol, None).await;
    pause().await;
    app.added(&alice, &id, &dave, None).await;

    leave(&app, &alice, &id).await.assert_status(200);
    app.get_as(&alice, &conversation_path(&id)).await.assert_error(404, "not_found");
    assert_eq!(
        roles(&app.participants(&bob, &id).await),
        HashMap::from([
            (bob.id.clone(), json!("owner")),
            (carol.id.clone(), json!("member")),
            (dave.id.clone(), json!("member")),
        ])
    );
    assert_eq!(app.detail(&bob, &id).await["current_user_role"], "owner");
    assert_eq!(app.detail(&dave, &id).await["participant_count"], 3);
    let messages = app.all_messages(&bob, &id).await;
    let transferred = system_messages(&messages, "ownership_transferred");
    assert_eq!(transferred.len(), 1, "{messages:?}");
    assert_eq!(transferred[0]["system_data"]["to_user_id"], bob.id.as_str());
    assert_eq!(transferred[0]["system_data"]["reason"], "departure");
}

#[tokio::test]
async fn a_group_with_nobody_left_is_gone_and_so_is_a_direct_conversation_both_left() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let id = id_of(&app.conversation(&alice, "Short-lived", &[&bob]).await);

    leave(&app, &bob, &id).await.assert_status(200);
    app.get_as(&bob, &conversation_path(&id)).await.assert_error(404, "not_found");
    let seen = app.detail(&alice, &id).await;
    assert_eq!(seen["participant_count"], 1);
    assert_eq!(seen["current_user_role"], "owner");
    leave(&app, &bob, &id).await.assert_error(404, "not_found");

    leave(&app, &alice, &id).await.assert_status(200);
    app.get_as(&alice, &conversation_path(&id)).await.assert_error(404, "not_found");
    app.get_as(&bob, &conversation_path(&id)).await.assert_error(404, "not_found");
    assert!(listed_ids(&app, &alice).await.is_empty());
    assert!(listed_ids(&app, &bob).await.is_empty());

    let direct = id_of(&app.direct(&alice, &bob).await);
    leave(&app, &alice, &direct).await.assert_status(200);
    app.get_as(&alice, &conversation_path(&direct)).await.assert_error(404, "not_found");
    app.detail(&bob, &direct).await;
    leave(&app, &bob, &direct).await.assert_status(200);
    app.get_as(&bob, &conversation_path(&direct)).await.assert_error(404, "not_found");
    assert!(listed_ids(&app, &alice).await.is_empty());
    assert!(listed_ids(&app, &bob).await.is_empty());
}

#[tokio::test]
async fn the_owner_transfers_ownership_and_becomes_an_admin() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    let id = id_of(&app.conversation(&alice, "Crown", &[&bob, &carol]).await);
    let transfer = conversation_sub(&id, "transfer-ownership/");

    app.post_as(&carol, &transfer, &json!({"user_id": carol.id})).await.assert_error(403, "chat.permission_denied");
    let done = app.post_as(&alice, &transfer, &json!({"user_id": bob.id})).await;
    done.assert_status(200);
    let body = done.json();
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["current_user_role"], "admin");
    assert_eq!(app.detail(&bob, &id).await["current_user_role"], "owner");
    assert_eq!(
        roles(&app.participants(&carol, &id).await),
        HashMap::from([
            (alice.id.clone(), json!("admin")),
            (bob.id.clone(), json!("owner")),
            (carol.id.clone(), json!("member")),
        ])
    );
    let messages = app.all_messages(&carol, &id).await;
    let transferred = system_messages(&messages, "ownership_transferred");
    assert_eq!(transferred.len(), 1, "{messages:?}");
    assert_eq!(transferred[0]["system_data"]["from_user_id"], alice.id.as_str());
    assert_eq!(transferred[0]["system_data"]["to_user_id"], bob.id.as_str());
    assert_eq!(transferred[0]["system_data"]["reason"], "manual");

    // The old owner is an admin now: no second transfer, no role changes.
    app.post_as(&alice, &transfer, &json!({"user_id": carol.id})).await.assert_error(403, "chat.permission_denied");
    app.patch_as(&alice, &participant_path(&id, &carol.id), &json!({"role": "admin"}))
        .await
        .assert_error(403, "chat.permission_denied");
    app.delete_as(&alice, &participant_path(&id, &bob.id)).await.assert_error(403, "chat.permission_denied");
    // The new owner can.
    app.delete_as(&bob, &participant_path(&id, &alice.id)).await.assert_status(204);
}

#[tokio::test]
async fn participants_are_listed_added_changed_and_removed() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    let dave = app.register("dave@example.com").await;
    let erin = app.register("erin@example.com").await;
    let id = id_of(&app.conversation(&alice, "Crew", &[&bob]).await);

    let initial = app.get_as(&alice, &participants_path(&id)).await;
    initial.assert_status(200);
    assert!(initial.json()["next_cursor"].is_null());
    assert_eq!(initial.json()["results"].as_array().map(Vec::len), Some(2));

    pause().await;
    let carol_row = app.added(&alice, &id, &carol, None).await;
    assert_has_fields(&carol_row, PARTICIPANT_FIELDS);
    assert_eq!(carol_row["user_id"], carol.id.as_str());
    assert_eq!(carol_row["role"], "member");
    pause().await;
    let dave_row = app.added(&alice, &id, &dave, Some("admin")).await;
    assert_eq!(dave_row["role"], "admin");
    assert_eq!(app.detail(&bob, &id).await["participant_count"], 4);

    app.add(&alice, &id, &carol, None).await.assert_error(409, "chat.already_participant");
    app.add(&alice, &id, &alice, None).await.assert_error(409, "chat.already_participant");
    assert_field_error(
        &app.post_as(&alice, &participants_path(&id), &json!({"user_id": unknown_id()})).await,
        "user_id",
    );
    assert_field_error(&app.add(&alice, &id, &erin, Some("owner")).await, "role");
    app.post_as(&alice, &participants_path(&id), &json!({})).await.assert_error(400, "validation.failed");
    assert_eq!(app.detail(&bob, &id).await["participant_count"], 4);

    // Oldest first, in one page or in pages of two.
    let listed = app.participants(&bob, &id).await;
    let order: Vec<&str> = listed.iter().map(|p| p["user_id"].as_str().unwrap()).collect();
    assert_eq!(order.len(), 4);
    assert_eq!(&order[2..], &[carol.id.as_str(), dave.id.as_str()], "{order:?}");
    let paged = app.walk(&bob, &participants_path(&id), 2).await;
    assert_eq!(paged, listed);

    let messages = app.all_messages(&bob, &id).await;
    let added = system_messages(&messages, "participant_added");
    assert_eq!(added.len(), 2, "{messages:?}");
    let carol_added = added.iter().find(|m| m["system_data"]["user_id"] == carol.id.as_str()).expect("carol added");
    assert_eq!(carol_added["system_data"]["added_by_id"], alice.id.as_str());

    // Roles change by the owner only.
    let promoted = app.patch_as(&alice, &participant_path(&id, &carol.id), &json!({"role": "admin"})).await;
    promoted.assert_status(200);
    assert_has_fields(&promoted.json(), PARTICIPANT_FIELDS);
    assert_eq!(promoted.json()["role"], "admin");
    assert_eq!(promoted.json()["user_id"], carol.id.as_str());
    let messages = app.all_messages(&bob, &id).await;
    let changed = system_messages(&messages, "role_changed");
    assert_eq!(changed.len(), 1, "{messages:?}");
    assert_eq!(changed[0]["system_data"]["user_id"], carol.id.as_str());
    assert_eq!(changed[0]["system_data"]["old_role"], "member");
    assert_eq!(changed[0]["system_data"]["new_role"], "admin");
    assert_eq!(changed[0]["system_data"]["changed_by_id"], alice.id.as_str());

    // Removal.
    let removed = app.delete_as(&alice, &participant_path(&id, &dave.id)).await;
    removed.assert_status(204);
    assert!(removed.body.is_empty(), "204 has no body: {}", removed.text());
    app.get_as(&dave, &conversation_path(&id)).await.assert_error(404, "not_found");
    assert_eq!(app.detail(&bob, &id).await["participant_count"], 3);
    let messages = app.all_messages(&bob, &id).await;
    let gone = system_messages(&messages, "participant_removed");
    assert_eq!(gone.len(), 1, "{messages:?}");
    assert_eq!(gone[0]["system_data"]["user_id"], dave.id.as_str());
    assert_eq!(gone[0]["system_data"]["removed_by_id"], alice.id.as_str());
    assert_eq!(gone[0]["system_data"]["reason"], "removed");

    // Someone who is not (or no longer) a participant is not found.
    app.delete_as(&alice, &participant_path(&id, &dave.id)).await.assert_error(404, "not_found");
    app.patch_as(&alice, &participant_path(&id, &dave.id), &json!({"role": "admin"}))
        .await
        .assert_error(404, "not_found");
    app.delete_as(&alice, &participant_path(&id, &erin.id)).await.assert_error(404, "not_found");
    app.delete_as(&alice, &participant_path(&id, &unknown_id())).await.assert_error(404, "not_found");

    // Removing yourself is leaving.
    app.delete_as(&alice, &participant_path(&id, &alice.id)).await.assert_error(400, "chat.use_leave");
    app.delete_as(&bob, &participant_path(&id, &bob.id)).await.assert_error(400, "chat.use_leave");
    app.delete_as(&carol, &participant_path(&id, &carol.id)).await.assert_error(400, "chat.use_leave");

    // Rejoining is a new participation.
    let dave_again = app.added(&alice, &id, &dave, None).await;
    assert_ne!(dave_again["id"], dave_row["id"]);
    assert_eq!(dave_again["role"], "member");
    assert_eq!(app.detail(&dave, &id).await["participant_count"], 4);

    // Direct conversations have a fixed pair.
    let direct = id_of(&app.direct(&alice, &bob).await);
    app.add(&alice, &direct, &carol, None).await.assert_error(400, "chat.not_a_group");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participant_count_stays_exact_under_concurrent_changes() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let newcomers = app.register_many("newcomer", 10).await;
    let id = id_of(&app.conversation(&alice, "Crowd", &[&bob]).await);

    let adds = newcomers.iter().map(|user| app.add(&alice, &id, user, None));
    for response in futures::future::join_all(adds).await {
        response.assert_status(201);
    }
    assert_eq!(app.detail(&alice, &id).await["participant_count"], 12);
    assert_eq!(app.detail(&bob, &id).await["participant_count"], 12);
    let listed = app.participants(&bob, &id).await;
    assert_eq!(listed.len(), 12);
    let users: Vec<String> = listed.iter().map(|p| p["user_id"].as_str().unwrap().to_owned()).collect();
    assert_unique(&users);
    assert_eq!(system_messages(&app.all_messages(&bob, &id).await, "participant_added").len(), 10);

    let paths: Vec<String> = newcomers[..5].iter().map(|user| participant_path(&id, &user.id)).collect();
    let removals = paths.iter().map(|path| app.delete_as(&alice, path));
    for response in futures::future::join_all(removals).await {
        response.assert_status(204);
    }
    let leaves = newcomers[5..].iter().map(|user| leave(&app, user, &id));
    for response in futures::future::join_all(leaves).await {
        response.assert_status(200);
    }
    assert_eq!(app.detail(&alice, &id).await["participant_count"], 2);
    assert_eq!(app.participants(&alice, &id).await.len(), 2);
}

#[tokio::test]
async fn owners_and_admins_rename_a_group_and_only_the_owner_deletes_it() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    let id = id_of(&app.conversation(&alice, "Old", &[&bob, &carol]).await);
    app.patch_as(&alice, &participant_path(&id, &bob.id), &json!({"role": "admin"})).await.assert_status(200);

    let renamed = app.patch_as(&alice, &conversation_path(&id), &json!({"title": "New"})).await;
    renamed.assert_status(200);
    assert_eq!(renamed.json()["title"], "New");
    assert_eq!(renamed.json()["display_name"], "New");
    assert_eq!(app.detail(&carol, &id).await["title"], "New");
    let messages = app.all_messages(&carol, &id).await;
    let changed = system_messages(&messages, "title_changed");
    assert_eq!(changed.len(), 1, "{messages:?}");
    assert_eq!(changed[0]["system_data"]["old_title"], "Old");
    assert_eq!(changed[0]["system_data"]["new_title"], "New");
    assert_eq!(changed[0]["system_data"]["changed_by_id"], alice.id.as_str());

    let by_admin = app.patch_as(&bob, &conversation_path(&id), &json!({"title": "Newer"})).await;
    by_admin.assert_status(200);
    assert_eq!(by_admin.json()["title"], "Newer");
    app.patch_as(&carol, &conversation_path(&id), &json!({"title": "Mine"}))
        .await
        .assert_error(403, "chat.permission_denied");
    assert_field_error(
        &app.patch_as(&alice, &conversation_path(&id), &json!({"title": "x".repeat(101)})).await,
        "title",
    );
    assert_eq!(app.detail(&carol, &id).await["title"], "Newer");

    app.delete_as(&bob, &conversation_path(&id)).await.assert_error(403, "chat.permission_denied");
    app.delete_as(&carol, &conversation_path(&id)).await.assert_error(403, "chat.permission_denied");
    let deleted = app.delete_as(&alice, &conversation_path(&id)).await;
    deleted.assert_status(204);
    assert!(deleted.body.is_empty(), "204 has no body: {}", deleted.text());
    for user in [&alice, &bob, &carol] {
        app.get_as(user, &conversation_path(&id)).await.assert_error(404, "not_found");
        app.get_as(user, &messages_path(&id)).await.assert_error(404, "not_found");
        assert!(listed_ids(&app, user).await.is_empty(), "{} still lists it", user.email);
    }
}

#[tokio::test]
async fn a_direct_conversation_cannot_be_renamed_or_deleted() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let id = id_of(&app.direct(&alice, &bob).await);
    for user in [&alice, &bob] {
        app.patch_as(user, &conversation_path(&id), &json!({"title": "Us"}))
            .await
            .assert_error(403, "chat.permission_denied");
        app.delete_as(user, &conversation_path(&id)).await.assert_error(403, "chat.permission_denied");
    }
    let still = app.detail(&alice, &id).await;
    assert!(still["title"].is_null());
    assert_eq!(still["participant_count"], 2);
}

#[tokio::test]
async fn outsiders_and_unknown_ids_get_not_found_on_every_conversation_path() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let eve = app.register("eve@example.com").await;
    let id = id_of(&app.conversation(&alice, "Private", &[&bob]).await);
    let message = id_of(&app.send(&alice, &id, "secret").await);
    let direct = id_of(&app.direct(&alice, &bob).await);

    let paths = |conversation: &str, message: &str| -> Vec<(Method, String, Option<Value>)> {
        vec![
            (Method::GET, conversation_path(conversation), None),
            (Method::PATCH, conversation_path(conversation), Some(json!({"title": "Mine"}))),
            (Method::DELETE, conversation_path(conversation), None),
            (Method::POST, conversation_sub(conversation, "read/"), Some(json!({}))),
            (Method::POST, conversation_sub(conversation, "leave/"), Some(json!({}))),
            (Method::POST, conversation_sub(conversation, "transfer-ownership/"), Some(json!({"user_id": bob.id}))),
            (Method::GET, participants_path(conversation), None),
            (Method::POST, participants_path(conversation), Some(json!({"user_id": eve.id}))),
            (Method::PATCH, participant_path(conversation, &bob.id), Some(json!({"role": "admin"}))),
            (Method::DELETE, participant_path(conversation, &bob.id), None),
            (Method::GET, messages_path(conversation), None),
            (Method::POST, messages_path(conversation), Some(json!({"content": "hi"}))),
            (Method::GET, message_path(conversation, message), None),
            (Method::PATCH, message_path(conversation, message), Some(json!({"content": "edited"}))),
            (Method::DELETE, message_path(conversation, message), None),
        ]
    };
    let mut failures = Vec::new();
    let cases = [
        (&eve, paths(&id, &message)),
        (&eve, paths(&direct, &unknown_id())),
        (&alice, paths(&unknown_id(), &unknown_id())),
    ];
    for (user, requests) in cases {
        for (method, path, body) in requests {
            let response = app.call_as(user, method.clone(), &path, body.as_ref()).await;
            let code = if response.status == 404 { response.json()["error"]["code"].clone() } else { Value::Null };
            if response.status != 404 || code != "not_found" {
                failures.push(format!("{} {method} {path}: {} {}", user.email, response.status, response.text()));
            }
        }
    }
    assert!(failures.is_empty(), "expected 404 not_found:\n{}", failures.join("\n"));

    // Nothing changed.
    let seen = app.detail(&alice, &id).await;
    assert_eq!(seen["title"], "Private");
    assert_eq!(seen["participant_count"], 2);
    assert_eq!(app.message(&bob, &id, &message).await["content"], "secret");
}

#[derive(Clone, Copy, Debug)]
enum Action {
    Read,
    ListParticipants,
    PostMessage,
    AddMember,
    AddAdmin,
    RemoveMember,
    RemoveAdmin,
    RemoveOwner,
    ChangeRole,
    Transfer,
    Rename,
    Delete,
}

/// Expected status for the owner, an admin, a member and an outsider.
const MATRIX: &[(Action, [u16; 4])] = &[
    (Action::Read, [200, 200, 200, 404]),
    (Action::ListParticipants, [200, 200, 200, 404]),
    (Action::PostMessage, [201, 201, 201, 404]),
    (Action::AddMember, [201, 201, 403, 404]),
    (Action::AddAdmin, [201, 403, 403, 404]),
    (Action::RemoveMember, [204, 204, 403, 404]),
    (Action::RemoveAdmin, [204, 403, 403, 404]),
    (Action::RemoveOwner, [400, 403, 403, 404]),
    (Action::ChangeRole, [200, 403, 403, 404]),
    (Action::Transfer, [200, 403, 403, 404]),
    (Action::Rename, [200, 200, 403, 404]),
    (Action::Delete, [204, 403, 403, 404]),
];

struct Cast {
    owner: User,
    admin: User,
    admin2: User,
    member: User,
    member2: User,
    outsider: User,
    newcomer: User,
}

async fn perform(app: &ChatApp, cast: &Cast, actor: &User, action: Action, id: &str) -> TestResponse {
    match action {
        Action::Read => app.get_as(actor, &conversation_path(id)).await,
        Action::ListParticipants => app.get_as(actor, &participants_path(id)).await,
        Action::PostMessage => app.post_message(actor, id, &json!({"content": "hi"})).await,
        Action::AddMember => app.add(actor, id, &cast.newcomer, None).await,
        Action::AddAdmin => app.add(actor, id, &cast.newcomer, Some("admin")).await,
        Action::RemoveMember => app.delete_as(actor, &participant_path(id, &cast.member2.id)).await,
        Action::RemoveAdmin => app.delete_as(actor, &participant_path(id, &cast.admin2.id)).await,
        Action::RemoveOwner => app.delete_as(actor, &participant_path(id, &cast.owner.id)).await,
        Action::ChangeRole => {
            app.patch_as(actor, &participant_path(id, &cast.member2.id), &json!({"role": "admin"})).await
        }
        Action::Transfer => {
            app.post_as(actor, &conversation_sub(id, "transfer-ownership/"), &json!({"user_id": cast.member2.id})).await
        }
        Action::Rename => app.patch_as(actor, &conversation_path(id), &json!({"title": "Renamed"})).await,
        Action::Delete => app.delete_as(actor, &conversation_path(id)).await,
    }
}

#[tokio::test]
async fn the_rights_of_owners_admins_members_and_outsiders() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let cast = Cast {
        owner: app.register("owner@example.com").await,
        admin: app.register("admin@example.com").await,
        admin2: app.register("admin2@example.com").await,
        member: app.register("member@example.com").await,
        member2: app.register("member2@example.com").await,
        outsider: app.register("outsider@example.com").await,
        newcomer: app.register("newcomer@example.com").await,
    };
    let actors =
        [("owner", &cast.owner), ("admin", &cast.admin), ("member", &cast.member), ("outsider", &cast.outsider)];

    let mut failures = Vec::new();
    for &(action, expected) in MATRIX {
        for ((name, actor), want) in actors.iter().zip(expected) {
            let group = app
                .conversation(&cast.owner, "Matrix", &[&cast.admin, &cast.admin2, &cast.member, &cast.member2])
                .await;
            let id = id_of(&group);
            for admin in [&cast.admin, &cast.admin2] {
                app.patch_as(&cast.owner, &participant_path(&id, &admin.id), &json!({"role": "admin"}))
                    .await
                    .assert_status(200);
            }
            let response = perform(&app, &cast, actor, action, &id).await;
            let code = match want {
                400 => Some("chat.use_leave"),
                403 => Some("chat.permission_denied"),
                404 => Some("not_found"),
                _ => None,
            };
            let got_code = if response.status >= 400 {
                serde_json::from_slice::<Value>(&response.body).ok().map(|b| b["error"]["code"].clone())
            } else {
                None
            };
            let ok = response.status == want
                && match code {
                    Some(code) => got_code.as_ref().is_some_and(|c| c == code),
                    None => true,
                };
            if !ok {
                failures.push(format!(
                    "{action:?} by the {name}: expected {want} {code:?}, got {} {}",
                    response.status,
                    response.text()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} wrong answers:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_ownership_changes_leave_exactly_one_owner() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    for round in 0..3 {
        let id = id_of(&app.conversation(&alice, &format!("Race {round}"), &[&bob, &carol]).await);
        app.add(&alice, &id, &bob, None).await; // already in: answered 409, changes nothing
        let path = conversation_sub(&id, "transfer-ownership/");
        let (bob_body, carol_body) = (json!({"user_id": bob.id}), json!({"user_id": carol.id}));
        let (to_bob, to_carol) =
            tokio::join!(app.post_as(&alice, &path, &bob_body), app.post_as(&alice, &path, &carol_body));
        let statuses = [to_bob.status, to_carol.status];
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "one transfer wins: {statuses:?}");
        for response in [&to_bob, &to_carol].into_iter().filter(|r| r.status != 200) {
            let code = response.json()["error"]["code"].as_str().unwrap_or_default().to_owned();
            assert!(
                code == "chat.conflict" || code == "chat.permission_denied",
                "the loser is refused, not applied: {code}"
            );
        }
        let roles = roles(&app.participants(&carol, &id).await);
        let owners = roles.values().filter(|role| **role == json!("owner")).count();
        assert_eq!(owners, 1, "exactly one owner: {roles:?}");
        assert_eq!(roles[&alice.id], json!("admin"));
    }
}
