//! {{ Plural }} over HTTP: created, listed newest first, read, changed and deleted by their
//! owner{% if auth %}, invisible to anyone else, and managed by staff in the admin site{% endif %}.

use saas_core::testing::TestDatabase;
use serde_json::json;

use crate::support::{self, Client};

#[tokio::test]
async fn an_owner_creates_lists_reads_changes_and_deletes_{{ plural }}() {
    let db = TestDatabase::create().await;
    let app = support::start(&db).await;
    let ann = Client::sign_up(&app, "ann@example.com").await;

    let first = ann.post("/api/v1/{{ plural }}/", &json!({"name": "First"})).await;
    first.assert_status(201);
    let first = first.json();
    assert_eq!((&first["name"], &first["description"]), (&json!("First"), &json!("")));
    assert_eq!(first["owner_id"], json!(ann.id));
    let second = ann.post("/api/v1/{{ plural }}/", &json!({"name": "  Second ", "description": "More"})).await;
    second.assert_status(201);
    assert_eq!(second.json()["name"], "Second");

    let page = ann.get("/api/v1/{{ plural }}/?limit=1").await.json();
    assert_eq!(page["results"][0]["name"], "Second");
    let cursor = page["next_cursor"].as_str().expect("a second page");
    let rest = ann.get(&format!("/api/v1/{{ plural }}/?limit=1&cursor={cursor}")).await.json();
    assert_eq!(rest["results"][0]["name"], "First");
    assert!(rest["next_cursor"].is_null());

    let path = format!("/api/v1/{{ plural }}/{}/", first["id"].as_str().expect("an id"));
    assert_eq!(ann.get(&path).await.json()["name"], "First");
    let changed = ann.patch(&path, &json!({"description": "Changed"})).await;
    changed.assert_status(200);
    assert_eq!((&changed.json()["name"], &changed.json()["description"]), (&json!("First"), &json!("Changed")));

    ann.delete(&path).await.assert_status(204);
    ann.get(&path).await.assert_error(404, "not_found");
    ann.delete(&path).await.assert_error(404, "not_found");
}

#[tokio::test]
async fn a_{{ singular }}_needs_a_name() {
    let db = TestDatabase::create().await;
    let app = support::start(&db).await;
    let ann = Client::sign_up(&app, "ann@example.com").await;

    let blank = ann.post("/api/v1/{{ plural }}/", &json!({"name": "   "})).await.assert_error(400, "validation.failed");
    assert!(blank["details"]["fields"]["name"].is_array(), "{blank}");
    ann.post("/api/v1/{{ plural }}/", &json!({"description": "no name"})).await.assert_error(400, "validation.failed");
    assert_eq!(ann.get("/api/v1/{{ plural }}/").await.json()["results"], json!([]));
}
{% if auth %}
#[tokio::test]
async fn {{ plural }}_are_private_to_their_owner() {
    let db = TestDatabase::create().await;
    let app = support::start(&db).await;
    let ann = Client::sign_up(&app, "ann@example.com").await;
    let bob = Client::sign_up(&app, "bob@example.com").await;

    let created = ann.post("/api/v1/{{ plural }}/", &json!({"name": "Ann's"})).await.json();
    let path = format!("/api/v1/{{ plural }}/{}/", created["id"].as_str().expect("an id"));
    bob.get(&path).await.assert_error(404, "not_found");
    bob.patch(&path, &json!({"name": "Bob's"})).await.assert_error(404, "not_found");
    bob.delete(&path).await.assert_error(404, "not_found");
    assert_eq!(bob.get("/api/v1/{{ plural }}/").await.json()["results"], json!([]));
    assert_eq!(ann.get(&path).await.json()["name"], "Ann's");
    app.get("/api/v1/{{ plural }}/").await.assert_error(401, "auth.not_authenticated");
}
{% endif %}
{% if auth %}
#[tokio::test]
async fn staff_see_and_delete_{{ plural }}_in_the_admin_site() {
    let db = TestDatabase::create().await;
    let app = support::start(&db).await;
    let ann = Client::sign_up(&app, "ann@example.com").await;
    let created = ann.post("/api/v1/{{ plural }}/", &json!({"name": "Visible to staff"})).await.json();
    let id = created["id"].as_str().expect("an id").to_owned();
    let auth = saas_auth::AuthService::get(app.context()).expect("accounts");
    auth.create_superuser("staff@example.com", "correct horse battery staple").await.expect("a staff user");

    let mut browser = saas_admin::testing::AdminClient::new(app.url(""));
    assert_eq!(browser.sign_in("staff@example.com", "correct horse battery staple").await.status, 303);
    assert!(browser.get("/admin/{{ plural }}/").await.shows("Visible to staff"));
    let page = format!("/admin/{{ plural }}/{id}/");
    let deleted = browser.submit(&page, &format!("{page}actions/delete/"), &[("confirm", "true")]).await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    ann.get(&format!("/api/v1/{{ plural }}/{id}/")).await.assert_error(404, "not_found");
    assert!(browser.get("/admin/audit-log/").await.shows("delete"));
}
{% endif %}