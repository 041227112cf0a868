//! The chat panels of the admin site, built by `ChatModule::admin`: lists with search,
//! filters and cursor pages, detail pages, staff moderation through the service, and the
//! dashboard card — on SQLite, or PostgreSQL with SAAS_TEST_DATABASE_URL.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use saas_chat::ChatModule;
use saas_core::Module;
use saas_core::admin::{AdminPanel, AdminSite, AdminUser, Detail, ListPage, ListQuery};
use saas_core::testing::TestDatabase;
use support::{ChatApp, conversation_path, id_of, message_path, next_of_type, pause, start, unknown_id};

fn site() -> AdminSite {
    let mut site = AdminSite::default();
    ChatModule::default().admin(&mut site);
    site
}

fn panel(site: &AdminSite, slug: &str) -> Arc<dyn AdminPanel> {
    site.find(slug).unwrap_or_else(|| panic!("no {slug} panel")).clone()
}

fn staff() -> AdminUser {
    AdminUser { id: uuid::Uuid::new_v4(), email: "staff@example.com".into() }
}

fn query(search: Option<&str>, filters: &[(&str, &str)], limit: usize) -> ListQuery {
    ListQuery {
        search: search.map(str::to_owned),
        filters: filters.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        after: None,
        limit,
    }
}

async fn list(app: &ChatApp, panel: &Arc<dyn AdminPanel>, search: Option<&str>, filters: &[(&str, &str)]) -> ListPage {
    panel.list(app.context(), &query(search, filters, 100)).await.expect("list")
}

fn row_ids(page: &ListPage) -> Vec<String> {
    page.rows.iter().map(|row| row.id.clone()).collect()
}

/// Every row id of the list, walking pages of `limit` with the `after` cursor.
async fn walk(app: &ChatApp, panel: &Arc<dyn AdminPanel>, filters: &[(&str, &str)], limit: usize) -> Vec<String> {
    let mut query = query(None, filters, limit);
    let mut ids = Vec::new();
    loop {
        let page = panel.list(app.context(), &query).await.expect("page");
        assert!(page.rows.len() <= limit, "over the limit");
        ids.extend(row_ids(&page));
        match page.next {
            Some(next) => query.after = Some(next),
            None => return ids,
        }
    }
}

fn field<'a>(detail: &'a Detail, label: &str) -> &'a str {
    detail
        .fields
        .iter()
        .find(|(l, _)| l == label)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no field {label:?} in {:?}", detail.fields))
}

async fn detail(app: &ChatApp, panel: &Arc<dyn AdminPanel>, id: &str) -> Detail {
    panel.detail(app.context(), id).await.expect("detail").unwrap_or_else(|| panic!("no detail of {id}"))
}

#[tokio::test]
async fn the_site_has_the_chat_panels_and_card() {
    let site = site();
    let slugs: Vec<&str> = site.panels().iter().map(|p| p.slug()).collect();
    assert_eq!(slugs, vec!["conversations", "messages"]);
    assert!(site.panels().iter().all(|p| p.group() == "Chat"));
    assert_eq!(site.cards().len(), 1);
    let messages = panel(&site, "messages");
    assert_eq!(messages.actions().iter().map(|a| a.name).collect::<Vec<_>>(), vec!["soft_delete"]);
    assert!(messages.form().is_none(), "messages are not edited by staff");
}

#[tokio::test]
async fn conversations_are_listed_newest_first_searched_filtered_and_paged() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    let direct = id_of(&app.direct(&alice, &bob).await);
    pause().await;
    let team = id_of(&app.conversation(&alice, "Design team", &[&bob, &carol]).await);
    pause().await;
    let review = id_of(&app.conversation(&bob, "Design review", &[&alice]).await);
    pause().await;
    let sales = id_of(&app.conversation(&carol, "Sales", &[&alice]).await);
    pause().await;
    let gone = id_of(&app.conversation(&alice, "Old project", &[&carol]).await);
    app.delete_as(&alice, &conversation_path(&gone)).await.assert_status(204);
    let site = site();
    let panel = panel(&site, "conversations");

    let all = list(&app, &panel, None, &[]).await;
    assert_eq!(row_ids(&all), vec![gone.clone(), sales.clone(), review.clone(), team.clone(), direct.clone()]);
    assert!(all.next.is_none());
    let team_row = &all.rows[3];
    assert_eq!(team_row.cells[0], team);
    assert_eq!(team_row.cells[1], "group");
    assert_eq!(team_row.cells[2], "Design team");
    assert_eq!(team_row.cells[3], "3", "participants");
    assert!(!team_row.cells[4].is_empty(), "the group_created message is its last message");
    assert!(!team_row.cells[5].is_empty(), "created");
    assert_eq!(all.rows[4].cells[1], "direct");
    assert_eq!(all.rows[4].cells[2], "", "a direct conversation has no title");

    // Pages of two through the cursor: every conversation once, in the same order.
    let walked = walk(&app, &panel, &[], 2).await;
    assert_eq!(walked, row_ids(&all));
    let first = panel.list(app.context(), &query(None, &[], 2)).await.unwrap();
    assert_eq!(first.rows.len(), 2);
    assert!(first.next.is_some());

    assert_eq!(row_ids(&list(&app, &panel, Some("Design"), &[]).await), vec![review.clone(), team.clone()]);
    assert_eq!(row_ids(&list(&app, &panel, Some("Design r"), &[]).await), vec![review.clone()]);
    assert!(list(&app, &panel, Some("team"), &[]).await.rows.is_empty(), "a prefix, not a substring");
    assert!(list(&app, &panel, Some("Design_%"), &[]).await.rows.is_empty(), "wildcards match literally");
    assert_eq!(row_ids(&list(&app, &panel, Some(&sales), &[]).await), vec![sales.clone()], "by id");
    assert!(list(&app, &panel, Some(&unknown_id()), &[]).await.rows.is_empty());

    assert_eq!(row_ids(&list(&app, &panel, None, &[("type", "direct")]).await), vec![direct.clone()]);
    assert_eq!(list(&app, &panel, None, &[("type", "group")]).await.rows.len(), 4);
    assert_eq!(row_ids(&list(&app, &panel, None, &[("deleted", "true")]).await), vec![gone.clone()]);
    let open = row_ids(&list(&app, &panel, None, &[("deleted", "false")]).await);
    assert_eq!(open, vec![sales.clone(), review.clone(), team.clone(), direct.clone()]);
    let open_groups = walk(&app, &panel, &[("type", "group"), ("deleted", "false")], 1).await;
    assert_eq!(open_groups, vec![sales.clone(), review.clone(), team.clone()]);
    let both = list(&app, &panel, Some("Design"), &[("deleted", "false"), ("type", "group")]).await;
    assert_eq!(row_ids(&both), vec![review.clone(), team.clone()]);

    let wrong = panel.list(app.context(), &query(None, &[("deleted", "maybe")], 10)).await.unwrap_err();
    assert_eq!(wrong.code(), "validation.failed");
    let mut bad_cursor = query(None, &[], 10);
    bad_cursor.after = Some("yesterday".into());
    assert_eq!(panel.list(app.context(), &bad_cursor).await.unwrap_err().code(), "validation.failed");
}

#[tokio::test]
async fn a_conversation_page_shows_its_participants_and_latest_messages() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    let id = id_of(&app.conversation(&alice, "Planning", &[&bob, &carol]).await);
    let hello = id_of(&app.send(&alice, &id, "hello all").await);
    let oops = id_of(&app.send(&bob, &id, "oops, wrong chat").await);
    app.delete_as(&bob, &message_path(&id, &oops)).await.assert_status(204);
    app.delete_as(&alice, &support::participant_path(&id, &carol.id)).await.assert_status(204);
    let site = site();
    let panel = panel(&site, "conversations");

    let page = detail(&app, &panel, &id).await;
    assert_eq!(page.title, "Planning");
    assert_eq!(field(&page, "Id"), id);
    assert_eq!(field(&page, "Type"), "group");
    assert_eq!(field(&page, "Created by"), format!("alice@example.com ({})", alice.id));
    assert_eq!(field(&page, "Participants"), "2", "carol left");
    assert_eq!(field(&page, "Deleted"), "");

    let participants = &page.sections[0];
    assert_eq!(participants.title, "Participants");
    assert_eq!(participants.columns, vec!["User", "Role", "Joined", "Left", "Last read"]);
    // Joined together at creation: in the order of their participation ids.
    let mut users: Vec<&str> = participants.rows.iter().map(|row| row[0].as_str()).collect();
    users.sort_unstable();
    assert_eq!(users, vec!["alice@example.com", "bob@example.com", "carol@example.com"], "past ones too");
    let of = |email: &str| participants.rows.iter().position(|row| row[0] == email).expect("a participant");
    assert_eq!(participants.rows[of("alice@example.com")][1], "owner");
    assert_eq!(participants.rows[of("bob@example.com")][1], "member");
    let carol_row = &participants.rows[of("carol@example.com")];
    assert!(carol_row[3].len() > 10, "carol's departure time: {carol_row:?}");
    assert_eq!(participants.rows[of("bob@example.com")][3], "", "bob is still in");
    let bob_link = participants.links[of("bob@example.com")].as_deref();
    assert_eq!(bob_link, Some(format!("/admin/users/{}/", bob.id).as_str()));

    let messages = &page.sections[1];
    assert_eq!(messages.columns, vec!["Id", "Sender", "Content", "Created", "Deleted"]);
    // Newest first: carol's departure (system), the deleted one, hello, group_created.
    assert_eq!(messages.rows.len(), 4, "{:?}", messages.rows);
    assert_eq!(messages.rows[0][1], "system");
    assert_eq!(messages.rows[1][0], oops);
    assert_eq!(messages.rows[1][1], "bob@example.com");
    assert_eq!(messages.rows[1][2], "[deleted] oops, wrong chat", "as stored, marked deleted");
    assert!(!messages.rows[1][4].is_empty());
    assert_eq!(messages.rows[2][0], hello);
    assert_eq!(messages.rows[2][2], "hello all");
    assert_eq!(messages.rows[2][4], "");
    assert_eq!(messages.links[2].as_deref(), Some(format!("/admin/messages/{hello}/").as_str()));

    // The latest 100 only.
    for i in 0..105 {
        app.send(&alice, &id, &format!("note {i}")).await;
    }
    let page = detail(&app, &panel, &id).await;
    assert_eq!(page.sections[1].rows.len(), 100);
    assert_eq!(page.sections[1].rows[0][2], "note 104");

    let direct = id_of(&app.direct(&alice, &bob).await);
    assert_eq!(detail(&app, &panel, &direct).await.title, format!("direct conversation {direct}"));
    assert!(panel.detail(app.context(), &unknown_id()).await.unwrap().is_none());
    assert!(panel.detail(app.context(), "not-an-id").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_delete_a_message_as_its_sender_would() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let id = id_of(&app.conversation(&alice, "Moderated", &[&bob]).await);
    let rude = id_of(&app.send(&bob, &id, "something rude").await);
    let kept = id_of(&app.send(&bob, &id, "something fine").await);
    let mut alices = app.ws_ready(&id, &alice).await;
    let site = site();
    let panel = panel(&site, "messages");

    let before = detail(&app, &panel, &rude).await;
    assert_eq!(field(&before, "Deleted"), "");
    let said = panel.act(app.context(), &staff(), &rude, "soft_delete", &BTreeMap::new()).await.expect("deleted");
    assert!(!said.is_empty());

    // The conversation's sockets hear of it as of the sender's own delete.
    let frame = next_of_type(&mut alices, "message.deleted").await;
    assert_eq!(frame["message_id"], rude.as_str());
    // The API shows it deleted, blank.
    let shown = app.message(&alice, &id, &rude).await;
    assert_eq!(shown["is_deleted"], true);
    assert_eq!(shown["content"], "");
    assert_eq!(app.message(&alice, &id, &kept).await["is_deleted"], false);
    // Staff still read what was said.
    let after = detail(&app, &panel, &rude).await;
    assert_eq!(field(&after, "Content (as stored)"), "something rude");
    assert!(!field(&after, "Deleted").is_empty());
    assert_eq!(field(&after, "Sender"), format!("bob@example.com ({})", bob.id));
    assert_ne!(before.fields, after.fields, "the audit log sees the change");
    assert_eq!(row_ids(&list(&app, &panel, None, &[("deleted", "true")]).await), vec![rude.clone()]);
    assert!(!row_ids(&list(&app, &panel, None, &[("deleted", "false")]).await).contains(&rude));

    // Twice: the service's error, nothing changes.
    let again = panel.act(app.context(), &staff(), &rude, "soft_delete", &BTreeMap::new()).await.unwrap_err();
    assert_eq!(again.code(), "chat.message_deleted");
    assert_eq!(detail(&app, &panel, &rude).await.fields, after.fields);
    // The sender's own delete stays idempotent.
    app.delete_as(&bob, &message_path(&id, &rude)).await.assert_status(204);

    // System messages stay.
    let messages = app.all_messages(&alice, &id).await;
    let created = id_of(support::system_messages(&messages, "group_created")[0]);
    let refused = panel.act(app.context(), &staff(), &created, "soft_delete", &BTreeMap::new()).await.unwrap_err();
    assert_eq!(refused.code(), "chat.permission_denied");
    assert_eq!(app.message(&alice, &id, &created).await["is_deleted"], false);

    let unknown = panel.act(app.context(), &staff(), &unknown_id(), "soft_delete", &BTreeMap::new()).await;
    assert_eq!(unknown.unwrap_err().code(), "not_found");
    let other = panel.act(app.context(), &staff(), &kept, "explode", &BTreeMap::new()).await;
    assert_eq!(other.unwrap_err().code(), "not_found");
    assert_eq!(app.message(&alice, &id, &kept).await["is_deleted"], false);
}

#[tokio::test]
async fn messages_are_listed_in_pages_and_counted_on_the_dashboard() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let id = id_of(&app.conversation(&alice, "Chatter", &[&bob]).await);
    let long = "x".repeat(120);
    let mut sent = Vec::new();
    for content in ["one", "two", "three", long.as_str()] {
        sent.push(id_of(&app.send(&alice, &id, content).await));
    }
    let direct = id_of(&app.direct(&alice, &bob).await);
    sent.push(id_of(&app.send(&bob, &direct, "psst").await));
    let closed = id_of(&app.conversation(&bob, "Closed", &[&alice]).await);
    app.delete_as(&bob, &conversation_path(&closed)).await.assert_status(204);
    let site = site();
    let panel = panel(&site, "messages");

    // Three system messages (group_created twice, the direct pair has none) and five posts.
    let everything = list(&app, &panel, None, &[]).await;
    assert_eq!(everything.rows.len(), 7, "{:?}", everything.rows);
    let walked = walk(&app, &panel, &[], 3).await;
    assert_eq!(walked, row_ids(&everything));
    assert_eq!(walked.iter().collect::<HashSet<_>>().len(), walked.len());
    let newest: Vec<&String> = sent.iter().rev().collect();
    let listed_posts: Vec<&String> = walked.iter().filter(|id| sent.contains(id)).collect();
    assert_eq!(listed_posts, newest, "newest first");

    let psst = &everything.rows[1];
    assert_eq!(psst.cells[0], sent[4]);
    assert_eq!(psst.cells[1], direct);
    assert_eq!(psst.cells[2], "bob@example.com");
    assert_eq!(psst.cells[3], "text");
    assert_eq!(psst.cells[4], "psst");
    assert_eq!(psst.cells[6], "", "not deleted");
    assert_eq!(everything.rows[0].cells[2], "system", "Closed's group_created");
    let excerpt = &everything.rows[2].cells[4];
    assert_eq!(excerpt, &format!("{}…", "x".repeat(80)));
    assert_eq!(row_ids(&list(&app, &panel, Some(&sent[1]), &[]).await), vec![sent[1].clone()]);
    assert!(list(&app, &panel, Some("two"), &[]).await.rows.is_empty(), "searched by id only");

    let detail = detail(&app, &panel, &sent[0]).await;
    assert_eq!(field(&detail, "Conversation"), format!("{id} (group, Chatter)"));
    assert_eq!(field(&detail, "Content (as stored)"), "one");
    assert_eq!(field(&detail, "Type"), "text");

    let card = site.cards()[0].card(app.context()).await.expect("card");
    assert_eq!(card.title, "Chat");
    let figures: Vec<(&str, &str, Option<&str>)> =
        card.items.iter().map(|i| (i.label.as_str(), i.value.as_str(), i.link.as_deref())).collect();
    assert_eq!(
        figures,
        vec![
            ("Open conversations", "2", Some("/admin/conversations/?deleted=false")),
            ("Messages today", "7", Some("/admin/messages/")),
        ]
    );
}
