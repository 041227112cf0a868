//! The admin site in headless Chromium, driven through chromedriver: sign in, search a
//! user, deactivate them, see the audit entry; the dashboard's screenshot is kept as
//! `target/tmp/admin-dashboard.png`. Runs when `SAAS_BROWSER_E2E=1` (`.ci/run` installs
//! Debian's `chromium` and `chromium-driver` and sets it); then a missing browser fails.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use saas_admin::AdminModule;
use saas_auth::{AuthModule, AuthService};
use saas_core::testing::{TestApp, TestDatabase};
use serde_json::json;

const STAFF: &str = "staff@example.com";
const PASSWORD: &str = "correct horse battery";

struct Driver {
    process: tokio::process::Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.start_kill();
    }
}

async fn chromedriver() -> Driver {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap();
    let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    let process = tokio::process::Command::new(&binary)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| panic!("SAAS_BROWSER_E2E=1 but {binary} does not start: {err}"));
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Driver { process, port };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on port {port}");
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let options = json!({
        "binary": chromium,
        "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--window-size=1280,900", format!("--user-data-dir={}", profile.display()),
        ],
    });
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .unwrap_or_else(|err| panic!("no Chromium session: {err}"))
}

/// Waits until the browser shows the page at `path` (a click's navigation has finished).
async fn wait_for_path(client: &Client, path: &str) {
    for _ in 0..100 {
        let url = client.current_url().await.unwrap();
        let ready = client.execute("return document.readyState", vec![]).await.unwrap();
        if url.path() == path && ready == "complete" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser did not reach {path}: {}", client.source().await.unwrap_or_default());
}

/// Waits until the browser shows `path` with a query containing `query`, fully loaded.
async fn wait_for_query(client: &Client, path: &str, query: &str) {
    for _ in 0..100 {
        let url = client.current_url().await.unwrap();
        let ready = client.execute("return document.readyState", vec![]).await.unwrap();
        if url.path() == path && url.query().is_some_and(|q| q.contains(query)) && ready == "complete" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser did not reach {path}?{query}: {}", client.source().await.unwrap_or_default());
}

async fn text_of(client: &Client, css: &str) -> String {
    let element = client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await;
    element.unwrap_or_else(|err| panic!("no {css}: {err}")).text().await.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_sign_in_find_a_user_deactivate_them_and_see_the_audit_entry() {
    if std::env::var("SAAS_BROWSER_E2E").as_deref() != Ok("1") {
        eprintln!("skipped: set SAAS_BROWSER_E2E=1 (with chromium and chromium-driver installed) to run");
        return;
    }
    let db = TestDatabase::create().await;
    let app = TestApp::builder().module(AuthModule::default()).module(AdminModule).start(&db).await;
    let auth = AuthService::get(app.context()).unwrap();
    auth.create_superuser(STAFF, PASSWORD).await.unwrap();
    let member = app
        .post("/api/v1/auth/registration/", &json!({"email": "member@example.com", "password": PASSWORD}))
        .await
        .json()["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let driver = chromedriver().await;
    let profile = std::env::temp_dir().join(format!("saas-admin-chromium-{}", std::process::id()));
    let client = browser(&driver, &profile).await;
    let base = app.url("");

    // Signing in: the dashboard asks for it first.
    client.goto(&format!("{base}/admin/")).await.unwrap();
    assert!(client.current_url().await.unwrap().path().starts_with("/admin/login/"));
    client.find(Locator::Css("input[name=email]")).await.unwrap().send_keys(STAFF).await.unwrap();
    client.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    client.find(Locator::Css(".signin button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_for_path(&client, "/admin/").await;
    assert_eq!(text_of(&client, "main h1").await, "Dashboard");
    assert!(text_of(&client, ".cards").await.contains("Users joined this week"));
    let screenshot = client.screenshot().await.unwrap();
    assert!(screenshot.starts_with(b"\x89PNG") && screenshot.len() > 10_000, "a real picture of the page");
    let artefact = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("admin-dashboard.png");
    std::fs::write(&artefact, &screenshot).unwrap();

    // Searching a user and opening them.
    client.find(Locator::LinkText("Users")).await.unwrap().click().await.unwrap();
    wait_for_path(&client, "/admin/users/").await;
    client.find(Locator::Css("input[name=q]")).await.unwrap().send_keys("member@").await.unwrap();
    client.find(Locator::Css(".filters button[type=submit]")).await.unwrap().click().await.unwrap();
    // The search stays on the same path: wait for its query string to be the page shown.
    wait_for_query(&client, "/admin/users/", "q=member").await;
    let rows = text_of(&client, "table.list tbody").await;
    assert!(rows.contains("member@example.com") && !rows.contains(STAFF), "{rows}");
    client.find(Locator::LinkText("member@example.com")).await.unwrap().click().await.unwrap();
    wait_for_path(&client, &format!("/admin/users/{member}/")).await;

    // Deactivating them with a reason.
    let form = format!("form[action='/admin/users/{member}/actions/deactivate/']");
    client.find(Locator::Css(&format!("{form} input[name=reason]"))).await.unwrap().send_keys("spam").await.unwrap();
    client.find(Locator::Css(&format!("{form} input[name=confirm]"))).await.unwrap().click().await.unwrap();
    client.find(Locator::Css(&format!("{form} button"))).await.unwrap().click().await.unwrap();
    wait_for_path(&client, &format!("/admin/users/{member}/")).await;
    assert!(text_of(&client, ".flash.ok").await.contains("member@example.com is deactivated"));
    assert!(text_of(&client, "dl.fields").await.contains("Deactivation reason\nspam"));
    let inactive = app.post("/api/v1/auth/login/", &json!({"email": "member@example.com", "password": PASSWORD})).await;
    inactive.assert_error(403, "auth.inactive");

    // The audit log shows who did it.
    client.find(Locator::LinkText("Audit log")).await.unwrap().click().await.unwrap();
    wait_for_path(&client, "/admin/audit-log/").await;
    let log = text_of(&client, "table.list tbody").await;
    let entry = log.lines().find(|line| line.contains("deactivate")).unwrap_or_else(|| panic!("{log}"));
    assert!(entry.contains(STAFF) && entry.contains(&member) && entry.contains("done"), "{entry}");

    // Nothing was loaded from another origin.
    let loaded =
        client.execute("return performance.getEntriesByType('resource').map(e => e.name)", vec![]).await.unwrap();
    for url in loaded.as_array().cloned().unwrap_or_default() {
        assert!(url.as_str().unwrap_or_default().starts_with(&base), "loaded from elsewhere: {url}");
    }

    client.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
}
