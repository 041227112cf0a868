//! The notification panels of the admin site, built by `NotifyModule::admin`: types created
//! and edited through the service's checks, notifications and deliveries listed with
//! search, filters and cursor pages, the staff retry of a failed delivery, and the
//! dashboard card — on SQLite, or PostgreSQL with SAAS_TEST_DATABASE_URL.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use saas_core::Module;
use saas_core::admin::{AdminPanel, AdminSite, AdminUser, Detail, Form, ListPage, ListQuery};
use saas_core::testing::TestDatabase;
use saas_core::testing::wait_until;
use saas_notify::NotifyModule;
use serde_json::json;
use support::push::{FakeApns, FakeFcm, FcmAnswer};
use support::{NotifyApp, start, start_with};

fn site() -> AdminSite {
    let mut site = AdminSite::default();
    NotifyModule::default().admin(&mut site);
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

async fn list(
    app: &NotifyApp,
    panel: &Arc<dyn AdminPanel>,
    search: Option<&str>,
    filters: &[(&str, &str)],
) -> ListPage {
    panel.list(app.context(), &query(search, filters, 100)).await.expect("list")
}

fn row_ids(page: &ListPage) -> Vec<String> {
    page.rows.iter().map(|row| row.id.clone()).collect()
}

/// Every row id of the list, walking pages of `limit` with the `after` cursor.
async fn walk(app: &NotifyApp, panel: &Arc<dyn AdminPanel>, filters: &[(&str, &str)], limit: usize) -> Vec<String> {
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

async fn detail(app: &NotifyApp, panel: &Arc<dyn AdminPanel>, id: &str) -> Detail {
    panel.detail(app.context(), id).await.expect("detail").unwrap_or_else(|| panic!("no detail of {id}"))
}

/// A type form as the site submits it: every field, unticked boxes empty.
fn type_form(key: &str, title: &str, body: &str, ticked: &[&str]) -> Form {
    let mut form = Form::from([
        ("key".to_owned(), key.to_owned()),
        ("display_name".to_owned(), format!("Type {key}")),
        ("title_template".to_owned(), title.to_owned()),
        ("body_template".to_owned(), body.to_owned()),
    ]);
    for name in ["push_enabled", "email_enabled", "websocket_enabled", "is_active"] {
        let value = if ticked.contains(&name) { "true" } else { "" };
        form.insert(name.to_owned(), value.to_owned());
    }
    form
}

#[tokio::test]
async fn the_site_has_the_notification_panels_and_card() {
    let site = site();
    let slugs: Vec<&str> = site.panels().iter().map(|p| p.slug()).collect();
    assert_eq!(slugs, vec!["notification-types", "notifications", "deliveries"]);
    assert!(site.panels().iter().all(|p| p.group() == "Notifications"));
    assert_eq!(site.cards().len(), 1);
    let types = panel(&site, "notification-types");
    let fields: Vec<&str> = types.form().expect("a form").iter().map(|f| f.name).collect();
    assert_eq!(
        fields,
        vec![
            "key",
            "display_name",
            "title_template",
            "body_template",
            "push_enabled",
            "email_enabled",
            "websocket_enabled",
            "is_active"
        ]
    );
    assert!(panel(&site, "notifications").form().is_none());
    let deliveries = panel(&site, "deliveries");
    assert_eq!(deliveries.actions().iter().map(|a| a.name).collect::<Vec<_>>(), vec!["retry"]);
    let filters: Vec<&str> = deliveries.filters().iter().map(|f| f.name).collect();
    assert_eq!(filters, vec!["channel", "status"]);
}

#[tokio::test]
async fn types_are_created_and_edited_through_the_service_checks() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let site = site();
    let panel = panel(&site, "notification-types");
    let service = app.service();

    let seeded = walk(&app, &panel, &[], 4).await;
    assert_eq!(seeded.len(), 6, "{seeded:?}");
    assert_eq!(seeded.iter().collect::<HashSet<_>>().len(), 6);
    assert_eq!(row_ids(&list(&app, &panel, Some("new_"), &[]).await), vec!["new_message"]);
    assert!(list(&app, &panel, Some("message"), &[]).await.rows.is_empty(), "a prefix of the key");
    let row = &list(&app, &panel, Some("welcome"), &[]).await.rows[0];
    assert_eq!(row.cells[..5], ["welcome", "Welcome", "Welcome to the app!", "in_app, push, email", "yes"]);

    let welcome = panel.values(app.context(), "welcome").await.unwrap().expect("values");
    assert_eq!(welcome["title_template"], "Welcome to the app!");
    assert_eq!(welcome["push_enabled"], "true");
    assert_eq!(welcome["websocket_enabled"], "false");
    assert!(panel.values(app.context(), "no_such_type").await.unwrap().is_none());

    // Created from the form: the same checks as the API, then sent like any type.
    let form = type_form(
        "order_shipped",
        "Order {{ number }} shipped",
        "By {{ carrier }}",
        &["push_enabled", "websocket_enabled", "is_active"],
    );
    let key = panel.save(app.context(), &staff(), None, &form).await.expect("created");
    assert_eq!(key, "order_shipped");
    let created = service.notification_type("order_shipped").await.unwrap();
    assert!(created.is_active && created.push_enabled && created.websocket_enabled && !created.email_enabled);
    assert_eq!(panel.values(app.context(), &key).await.unwrap().expect("values")["body_template"], "By {{ carrier }}");
    let ann = app.register("ann@example.com").await;
    let sent = service.notify(ann.uuid, &key, json!({"number": 7, "carrier": "Post"})).await.unwrap().unwrap();
    assert_eq!(sent.title, "Order 7 shipped");
    let page = detail(&app, &panel, &key).await;
    assert_eq!(page.title, "Type order_shipped");
    assert_eq!(field(&page, "Channels"), "in_app, push, websocket");
    assert_eq!(field(&page, "Active"), "yes");
    let latest = &page.sections[0];
    assert_eq!(latest.rows.len(), 1);
    assert_eq!(latest.rows[0][0], sent.id.to_string());
    assert_eq!(latest.rows[0][1], "ann@example.com");
    assert_eq!(latest.links[0].as_deref(), Some(format!("/admin/notifications/{}/", sent.id).as_str()));
    assert_eq!(walk(&app, &panel, &[], 4).await[0], "order_shipped", "newest first");

    // A template that does not compile is refused, naming the field; nothing is created.
    let broken = type_form("broken", "Fine", "Hello {{ name", &["is_active"]);
    let err = panel.save(app.context(), &staff(), None, &broken).await.unwrap_err();
    assert_eq!(err.code(), "validation.failed");
    assert!(err.details()["fields"]["body_template"].is_array(), "{:?}", err.details());
    assert!(err.details()["fields"].get("title_template").is_none());
    assert_eq!(service.notification_type("broken").await.unwrap_err().code(), "notify.type_not_found");
    assert_eq!(walk(&app, &panel, &[], 100).await.len(), 7);
    let err = panel.save(app.context(), &staff(), None, &type_form("Bad Key", "t", "b", &[])).await.unwrap_err();
    assert!(err.details()["fields"]["key"].is_array());
    let taken = panel.save(app.context(), &staff(), None, &type_form("welcome", "t", "b", &[])).await.unwrap_err();
    assert_eq!(taken.code(), "notify.type_exists");
    assert_eq!(service.notification_type("welcome").await.unwrap().title_template, "Welcome to the app!");

    // Saved unticked, a new type is inactive.
    panel.save(app.context(), &staff(), None, &type_form("draft_type", "t", "b", &[])).await.expect("created");
    let draft = service.notification_type("draft_type").await.unwrap();
    assert!(!draft.is_active && !draft.push_enabled && !draft.websocket_enabled);

    // Edited: every field of the form, the key fixed.
    let mut edit = panel.values(app.context(), "welcome").await.unwrap().unwrap();
    edit.insert("title_template".into(), "Welcome, {{ name }}!".into());
    edit.insert("email_enabled".into(), String::new());
    let saved = panel.save(app.context(), &staff(), Some("welcome"), &edit).await.expect("updated");
    assert_eq!(saved, "welcome");
    let welcome = service.notification_type("welcome").await.unwrap();
    assert_eq!(welcome.title_template, "Welcome, {{ name }}!");
    assert!(!welcome.email_enabled && welcome.push_enabled && welcome.is_active);
    let err = service.notify(ann.uuid, "welcome", json!({})).await.unwrap_err();
    assert_eq!(err.code(), "notify.missing_variable", "the new template is the one sent");

    let before = panel.values(app.context(), "welcome").await.unwrap().unwrap();
    let mut bad = before.clone();
    bad.insert("title_template".into(), "{% if %}".into());
    let err = panel.save(app.context(), &staff(), Some("welcome"), &bad).await.unwrap_err();
    assert_eq!(err.code(), "validation.failed");
    assert!(err.details()["fields"]["title_template"].is_array(), "{:?}", err.details());
    assert_eq!(panel.values(app.context(), "welcome").await.unwrap().unwrap(), before, "nothing changed");
    let mut renamed = before.clone();
    renamed.insert("key".into(), "hello".into());
    let err = panel.save(app.context(), &staff(), Some("welcome"), &renamed).await.unwrap_err();
    assert!(err.details()["fields"]["key"].is_array());
    assert!(service.notification_type("hello").await.is_err());
    let err = panel.save(app.context(), &staff(), Some("no_such_type"), &before).await.unwrap_err();
    assert_eq!(err.code(), "notify.type_not_found");

    let mut off = before.clone();
    off.insert("is_active".into(), String::new());
    panel.save(app.context(), &staff(), Some("welcome"), &off).await.expect("deactivated");
    assert_eq!(field(&detail(&app, &panel, "welcome").await, "Active"), "no");
    let err = service.notify(ann.uuid, "welcome", json!({"name": "Ann"})).await.unwrap_err();
    assert_eq!(err.code(), "notify.type_inactive");
    assert!(panel.detail(app.context(), "no_such_type").await.unwrap().is_none());
}

#[tokio::test]
async fn notifications_are_listed_filtered_and_shown_with_their_deliveries() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let ann = app.register("ann@example.com").await;
    let bob = app.register("bob@example.com").await;
    let service = app.service();
    let first = app.alert(&ann, "First").await["id"].as_str().unwrap().to_owned();
    let chat = service.notify(bob.uuid, "new_message", json!({"sender_name": "Ann", "preview": "hi"})).await;
    let chat = chat.unwrap().unwrap().id.to_string();
    let third = app.alert(&bob, "Third").await["id"].as_str().unwrap().to_owned();
    app.post_as(&ann, &format!("/api/v1/notifications/{first}/read/"), &json!({})).await.assert_status(200);
    app.settled_deliveries(&first).await;
    let site = site();
    let panel = panel(&site, "notifications");

    let all = list(&app, &panel, None, &[]).await;
    assert_eq!(row_ids(&all), vec![third.clone(), chat.clone(), first.clone()], "newest first");
    assert_eq!(all.rows[1].cells[1..5], ["bob@example.com", "new_message", "New message from Ann", "no"]);
    assert_eq!(all.rows[2].cells[4], "yes");
    assert_eq!(walk(&app, &panel, &[], 1).await, row_ids(&all));

    assert_eq!(row_ids(&list(&app, &panel, None, &[("read", "true")]).await), vec![first.clone()]);
    assert_eq!(row_ids(&list(&app, &panel, None, &[("read", "false")]).await), vec![third.clone(), chat.clone()]);
    assert_eq!(row_ids(&list(&app, &panel, None, &[("type", "new_message")]).await), vec![chat.clone()]);
    let alerts = walk(&app, &panel, &[("type", "system_alert"), ("read", "false")], 1).await;
    assert_eq!(alerts, vec![third.clone()]);
    assert!(list(&app, &panel, None, &[("type", "welcome")]).await.rows.is_empty());
    assert_eq!(row_ids(&list(&app, &panel, Some(&chat), &[]).await), vec![chat.clone()]);
    assert!(list(&app, &panel, Some("First"), &[]).await.rows.is_empty(), "searched by id");

    // The type filter offers the types there are, by id; a key names its type too.
    let late = service
        .create_type(
            serde_json::from_value(json!({"key": "late_type", "display_name": "Late", "title_template": "t",
                "body_template": "b"}))
            .unwrap(),
        )
        .await
        .unwrap();
    list(&app, &panel, None, &[]).await;
    let types = panel.filters().into_iter().find(|f| f.name == "type").expect("a type filter");
    assert!(types.choices.contains(&(late.id.to_string(), "Late".to_owned())), "{:?}", types.choices);
    let new_message = service.notification_type("new_message").await.unwrap().id.to_string();
    assert_eq!(row_ids(&list(&app, &panel, None, &[("type", &new_message)]).await), vec![chat.clone()]);
    assert!(list(&app, &panel, None, &[("type", &late.id.to_string())]).await.rows.is_empty());
    assert!(list(&app, &panel, None, &[("type", "no_such_type")]).await.rows.is_empty());

    let page = detail(&app, &panel, &first).await;
    assert_eq!(page.title, "First");
    assert_eq!(field(&page, "User"), format!("ann@example.com ({})", ann.id));
    assert_eq!(field(&page, "Type"), "system_alert");
    assert_eq!(field(&page, "Body"), "About First");
    assert_eq!(field(&page, "Read"), "yes");
    assert!(!field(&page, "Read at").is_empty());
    let deliveries = &page.sections[0];
    assert_eq!(deliveries.title, "Deliveries");
    let channels: HashSet<(&str, &str)> =
        deliveries.rows.iter().map(|row| (row[1].as_str(), row[2].as_str())).collect();
    assert_eq!(channels, HashSet::from([("websocket", "sent"), ("email", "sent")]), "{:?}", deliveries.rows);
    let link = deliveries.links[0].as_deref().expect("a link");
    assert_eq!(link, format!("/admin/deliveries/{}/", deliveries.rows[0][0]));
    assert!(panel.detail(app.context(), &uuid::Uuid::new_v4().to_string()).await.unwrap().is_none());
    assert!(panel.detail(app.context(), "nope").await.unwrap().is_none());
}

/// An app whose push senders point at the fakes, with or without the job worker.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_filtered_and_a_failed_one_is_retried_by_its_job() {
    let db = TestDatabase::create().await;
    let (fcm, apns, dir) = (FakeFcm::start().await, FakeApns::start().await, tempfile::tempdir().unwrap());
    // No worker: the test decides when jobs run.
    let app = push_app(&db, &fcm, &apns, dir.path(), false).await;
    let ann = app.register("ann@example.com").await;
    let device =
        app.post_as(&ann, "/api/v1/notifications/devices/", &json!({"platform": "fcm", "token": "flaky"})).await;
    device.assert_status(201);
    fcm.fail_with("flaky", FcmAnswer::ServerError { times: 1 });
    let service = app.service();
    let sent = service.notify(ann.uuid, "new_message", json!({"sender_name": "Bob", "preview": "yo"})).await;
    let sent = sent.unwrap().unwrap();
    let rows = service.store().deliveries_of(sent.id).await.unwrap();
    let of = |channel: &str| rows.iter().find(|d| d.channel == channel).expect("a delivery").id.to_string();
    let (push, websocket) = (of("push"), of("websocket"));
    assert!(service.deliver(push.parse().unwrap()).await.is_err(), "the provider's 500 fails it");
    let site = site();
    let panel = panel(&site, "deliveries");

    let all = list(&app, &panel, None, &[]).await;
    assert_eq!(all.rows.len(), 2);
    let failed = list(&app, &panel, None, &[("status", "failed")]).await;
    assert_eq!(row_ids(&failed), vec![push.clone()]);
    let cells = &failed.rows[0].cells;
    assert_eq!(cells[1..6], ["ann@example.com", "new_message", "push", "failed", "1"]);
    assert!(!cells[6].is_empty(), "the last error is shown");
    assert_eq!(row_ids(&list(&app, &panel, None, &[("channel", "websocket")]).await), vec![websocket.clone()]);
    assert_eq!(
        row_ids(&list(&app, &panel, None, &[("channel", "push"), ("status", "sent")]).await),
        Vec::<String>::new()
    );
    assert_eq!(walk(&app, &panel, &[], 1).await, row_ids(&all));
    assert_eq!(row_ids(&list(&app, &panel, Some(&websocket), &[]).await), vec![websocket.clone()]);

    let card = site.cards()[0].card(app.context()).await.expect("card");
    assert_eq!(card.title, "Notifications");
    let figures: Vec<(&str, &str, Option<&str>)> =
        card.items.iter().map(|i| (i.label.as_str(), i.value.as_str(), i.link.as_deref())).collect();
    assert_eq!(
        figures,
        vec![
            ("Failed deliveries", "1", Some("/admin/deliveries/?status=failed")),
            ("Notifications sent today", "1", Some("/admin/notifications/")),
        ]
    );

    // Only a failed delivery is retried.
    let none = BTreeMap::new();
    let err = panel.act(app.context(), &staff(), &websocket, "retry", &none).await.unwrap_err();
    assert_eq!(err.code(), "notify.delivery_not_failed");
    let unknown = panel.act(app.context(), &staff(), &uuid::Uuid::new_v4().to_string(), "retry", &none).await;
    assert_eq!(unknown.unwrap_err().code(), "not_found");
    assert_eq!(panel.act(app.context(), &staff(), &push, "resend", &none).await.unwrap_err().code(), "not_found");

    // The retry queues the delivery job, once however often it is asked for.
    let before = app.context().jobs().stats().await.unwrap().pending;
    let said = panel.act(app.context(), &staff(), &push, "retry", &none).await.expect("queued");
    assert!(!said.is_empty());
    panel.act(app.context(), &staff(), &push, "retry", &none).await.expect("asked again");
    assert_eq!(app.context().jobs().stats().await.unwrap().pending, before + 1);
    let page = detail(&app, &panel, &push).await;
    assert_eq!(field(&page, "Status"), "failed", "not attempted yet");

    // A worker runs the queued jobs (the retry and the first, never run): the push goes out.
    let worker = push_app(&db, &fcm, &apns, dir.path(), true).await;
    let id = push.parse().unwrap();
    wait_until("the retried push to be sent", async || {
        service.store().delivery(id).await.unwrap().is_some_and(|d| d.status == "sent")
    })
    .await;
    let page = detail(&app, &panel, &push).await;
    assert_eq!(field(&page, "Status"), "sent");
    assert_eq!(field(&page, "Attempts"), "2", "one failed attempt, one retried: {:?}", page.fields);
    assert!(!fcm.sent().is_empty());
    let err = panel.act(app.context(), &staff(), &push, "retry", &none).await.unwrap_err();
    assert_eq!(err.code(), "notify.delivery_not_failed");
    drop(worker);
}
