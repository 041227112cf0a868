//! The admin site through HTTP, as a browser without JavaScript uses it: sign-in, CSRF,
//! the users panel and its actions, the audit log, pagination and rate limits.

use saas_admin::AdminModule;
use saas_admin::testing::AdminClient;
use saas_auth::{AuthModule, AuthService};
use saas_core::testing::{TestApp, TestAppBuilder, TestDatabase};
use serde_json::json;

const STAFF: &str = "staff@example.com";
const PASSWORD: &str = "correct horse battery";

fn builder() -> TestAppBuilder {
    TestApp::builder().module(AuthModule::default()).module(AdminModule).background(false, false)
}

async fn start(db: &TestDatabase) -> TestApp {
    let app = builder().start(db).await;
    staff_user(&app, STAFF).await;
    app
}

async fn staff_user(app: &TestApp, email: &str) -> String {
    let service = AuthService::get(app.context()).unwrap();
    service.create_superuser(email, PASSWORD).await.unwrap().id.to_string()
}

async fn register(app: &TestApp, email: &str) -> String {
    let response = app.post("/api/v1/auth/registration/", &json!({"email": email, "password": PASSWORD})).await;
    response.assert_status(201);
    response.json()["user"]["id"].as_str().unwrap().to_owned()
}

async fn signed_in(app: &TestApp) -> AdminClient {
    let mut browser = AdminClient::new(app.url(""));
    let answer = browser.sign_in(STAFF, PASSWORD).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    browser
}

#[tokio::test]
async fn staff_sign_in_with_a_strict_cookie_see_the_dashboard_and_sign_out() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let mut browser = AdminClient::new(app.url(""));

    let first = browser.get("/admin/").await;
    assert_eq!(first.status, 303);
    assert_eq!(first.location.as_deref(), Some("/admin/login/?next=%2Fadmin%2F"));

    let answer = browser.sign_in(STAFF, PASSWORD).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(answer.location.as_deref(), Some("/admin/"));
    let cookie = answer.set_cookies.iter().find(|c| c.starts_with("saas_admin_session=")).unwrap();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/admin/"] {
        assert!(cookie.contains(flag), "{flag} missing from {cookie}");
    }
    assert!(!cookie.contains("Secure"), "DEBUG=true serves plain HTTP: {cookie}");

    let dashboard = browser.get("/admin/").await;
    assert_eq!(dashboard.status, 200);
    for text in ["Dashboard", "Accounts", "Users joined this week", "Background jobs", STAFF] {
        assert!(dashboard.shows(text), "{text} missing from the dashboard");
    }
    assert!(dashboard.shows("sign_in"), "the sign-in is in the recent activity");

    let out = browser.submit("/admin/", "/admin/logout/", &[]).await;
    assert_eq!(out.status, 303);
    assert!(browser.cookie("saas_admin_session").is_none());
    assert_eq!(browser.get("/admin/users/").await.status, 303, "signed out");
}

#[tokio::test]
async fn the_session_cookie_is_secure_outside_debug() {
    let db = TestDatabase::create().await;
    let app = builder().var("DEBUG", "false").start(&db).await;
    staff_user(&app, STAFF).await;
    let mut browser = AdminClient::new(app.url(""));
    let answer = browser.sign_in(STAFF, PASSWORD).await;
    let cookie = answer.set_cookies.iter().find(|c| c.starts_with("saas_admin_session=")).unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn non_staff_and_wrong_passwords_are_refused_without_a_session() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    register(&app, "member@example.com").await;
    let mut browser = AdminClient::new(app.url(""));

    // A member learns they cannot sign in here — and no one learns from the form whether
    // a password was right: every refusal reads the same.
    let member = browser.sign_in("member@example.com", PASSWORD).await;
    assert_eq!(member.status, 401);
    assert!(member.shows("not an active staff account"), "{}", member.body);
    assert!(browser.cookie("saas_admin_session").is_none());

    let wrong = browser.sign_in(STAFF, "not the password").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.body.replace(STAFF, "member@example.com"),
        member.body.replace(&member.csrf().unwrap(), &wrong.csrf().unwrap())
    );
    assert!(browser.cookie("saas_admin_session").is_none());

    // A staff member who is demoted loses the session at the next page.
    let mut staff = signed_in(&app).await;
    let service = AuthService::get(app.context()).unwrap();
    let me = service.check_credentials(STAFF, PASSWORD).await.unwrap();
    saas_core::with_pool!(app.context().db(), pool => sqlx::query("UPDATE auth_users SET is_staff = $1 WHERE id = $2")
        .bind(false).bind(me.id).execute(pool).await.map(|_| ()))
    .unwrap();
    assert_eq!(staff.get("/admin/").await.status, 303);
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused_and_change_nothing() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let member = register(&app, "member@example.com").await;
    let mut browser = signed_in(&app).await;

    let path = format!("/admin/users/{member}/actions/deactivate/");
    let missing = browser.post(&path, &[("reason", "spam")]).await;
    assert_eq!(missing.status, 403);
    assert!(missing.shows("CSRF check failed"));
    let wrong = browser.post(&path, &[("reason", "spam"), ("csrf_token", "0000")]).await;
    assert_eq!(wrong.status, 403);
    let detail = browser.get(&format!("/admin/users/{member}/")).await;
    assert!(detail.body.contains("<dt>Active</dt><dd>yes</dd>"), "still active");

    // The sign-in form is protected too (its token is a cookie of its own).
    let mut stranger = AdminClient::new(app.url(""));
    let forged = stranger.post("/admin/login/", &[("email", STAFF), ("password", PASSWORD)]).await;
    assert_eq!(forged.status, 403);
    assert!(stranger.cookie("saas_admin_session").is_none());
}

#[tokio::test]
async fn a_user_is_found_deactivated_through_the_service_and_audited() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let member = register(&app, "Member.One@example.com").await;
    register(&app, "other@example.com").await;
    let mut browser = signed_in(&app).await;

    let found = browser.get("/admin/users/?q=MEMBER.o").await;
    assert_eq!(found.status, 200);
    assert!(found.shows("member.one@example.com"));
    assert!(!found.shows("other@example.com"), "only the matching user");
    let by_id = browser.get(&format!("/admin/users/?q={member}")).await;
    assert!(by_id.shows("member.one@example.com"));
    let nobody = browser.get("/admin/users/?q=100%25_").await;
    assert!(nobody.shows("No results."), "wildcards are matched literally");

    let detail_path = format!("/admin/users/{member}/");
    let action = format!("/admin/users/{member}/actions/deactivate/");
    let unconfirmed = browser.submit(&detail_path, &action, &[("reason", "spam")]).await;
    assert_eq!(unconfirmed.status, 400);
    assert!(unconfirmed.shows("Tick “I am sure” to deactivate."));
    assert!(unconfirmed.body.contains("<dt>Active</dt><dd>yes</dd>"), "a dangerous action waits for confirmation");
    let done = browser.submit(&detail_path, &action, &[("reason", "spam"), ("confirm", "true")]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let detail = browser.get(&detail_path).await;
    assert!(detail.shows("member.one@example.com is deactivated"), "the outcome is shown once");
    assert!(detail.body.contains("<dt>Active</dt><dd>no</dd>"));
    assert!(detail.body.contains("<dt>Deactivation reason</dt><dd>spam</dd>"));
    // The same rule as the API: the account can no longer sign in.
    app.post("/api/v1/auth/login/", &json!({"email": "member.one@example.com", "password": PASSWORD}))
        .await
        .assert_error(403, "auth.inactive");

    let log = browser.get("/admin/audit-log/?q=staff@").await;
    assert!(log.shows("deactivate"));
    assert!(log.shows(&member));
    let entry = log.links().into_iter().find(|link| link.starts_with("/admin/audit-log/") && link.len() > 20).unwrap();
    let entry = browser.get(&entry).await;
    assert!(entry.shows(r#"{"Active":"yes""#) && entry.shows(r#"{"Active":"no""#), "{}", entry.body);
    assert!(entry.shows(r#""reason":"spam""#), "what was submitted is kept: {}", entry.body);
    assert!(!entry.body.contains("csrf_token\":"), "but not the CSRF token");

    // Refused by the rules: staff cannot deactivate themselves; the refusal is audited.
    let me = AuthService::get(app.context()).unwrap().check_credentials(STAFF, PASSWORD).await.unwrap().id;
    let own = format!("/admin/users/{me}/");
    let refused = browser.submit(&own, &format!("/admin/users/{me}/actions/deactivate/"), &[("confirm", "true")]).await;
    assert_eq!(refused.status, 400);
    assert!(refused.shows("You cannot deactivate your own account here."));
    let refusals = browser.get("/admin/audit-log/?outcome=refused").await;
    assert!(refusals.shows(&me.to_string()));
}

#[tokio::test]
async fn service_errors_show_on_the_page_and_nothing_changes() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let me = AuthService::get(app.context()).unwrap().check_credentials(STAFF, PASSWORD).await.unwrap().id;
    let mut browser = signed_in(&app).await;
    // A superuser's email is verified: resending is refused by the service's rule.
    let page = format!("/admin/users/{me}/");
    let refused = browser.submit(&page, &format!("/admin/users/{me}/actions/resend_verification/"), &[]).await;
    assert_eq!(refused.status, 400);
    assert!(refused.shows("The email is already verified."));
    assert_eq!(browser.post(&format!("/admin/users/{me}/actions/explode/"), &[]).await.status, 403, "CSRF first");
    let unknown = browser.submit(&page, &format!("/admin/users/{me}/actions/explode/"), &[]).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(browser.get("/admin/users/not-a-uuid/").await.status, 404);
    assert_eq!(browser.get("/admin/nothing/").await.status, 404);
    assert_eq!(browser.get("/admin/users/?after=garbage").await.status, 400);
}

#[tokio::test]
async fn long_lists_are_paged_by_keyset_and_filtered() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let service = AuthService::get(app.context()).unwrap();
    for n in 0..60 {
        service
            .register(saas_auth::service::RegisterInput {
                email: format!("user{n:02}@example.com"),
                password: Some(PASSWORD.into()),
                password1: None,
                password2: None,
            })
            .await
            .unwrap();
    }
    let mut browser = signed_in(&app).await;
    let first = browser.get("/admin/users/?staff=false").await;
    let rows = |page: &saas_admin::testing::Page| page.body.matches("@example.com</a>").count();
    assert_eq!(rows(&first), 50);
    let next = first.links().into_iter().find(|link| link.contains("after=")).unwrap();
    assert!(next.contains("staff=false"), "the filter is kept: {next}");
    let second = browser.get(&next).await;
    assert_eq!(rows(&second), 10, "60 members in all, the staff user filtered out");
    assert!(!second.links().iter().any(|link| link.contains("after=")), "no third page");
    let staff = browser.get("/admin/users/?staff=true").await;
    assert_eq!(rows(&staff), 1);
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited() {
    let db = TestDatabase::create().await;
    let app = builder().var("AUTH_RATE_LIMIT_PER_MINUTE", "3").start(&db).await;
    staff_user(&app, STAFF).await;
    let mut browser = AdminClient::new(app.url(""));
    for _ in 0..3 {
        assert_eq!(browser.sign_in(STAFF, "wrong password").await.status, 401);
    }
    let limited = browser.sign_in(STAFF, PASSWORD).await;
    assert_eq!(limited.status, 429);
    assert!(limited.headers.contains_key("retry-after"));
    assert!(browser.cookie("saas_admin_session").is_none());
}

#[tokio::test]
async fn the_admin_form_shares_the_login_limit_of_each_account() {
    let db = TestDatabase::create().await;
    let app = builder().var("AUTH_RATE_LIMIT_PER_MINUTE", "3").start(&db).await;
    staff_user(&app, STAFF).await;
    for _ in 0..3 {
        app.post("/api/v1/auth/login/", &json!({"email": STAFF, "password": "guess"})).await.assert_status(401);
    }
    // The admin form is no way around the API's per-account budget.
    let mut browser = AdminClient::new(app.url(""));
    let limited = browser.sign_in(STAFF, PASSWORD).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(browser.cookie("saas_admin_session").is_none());
}

#[tokio::test]
async fn pages_load_nothing_from_another_origin() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let member = register(&app, "member@example.com").await;
    let mut browser = signed_in(&app).await;
    let login = AdminClient::new(app.url("")).get("/admin/login/").await;
    assert_eq!(login.status, 200);
    assert!(login.links().iter().all(|link| link.starts_with('/') && !link.starts_with("//")));
    for path in ["/admin/", "/admin/users/", &format!("/admin/users/{member}/"), "/admin/audit-log/"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        let links = page.links();
        assert!(!links.is_empty());
        for link in links {
            assert!(link.starts_with('/') && !link.starts_with("//"), "{path} links elsewhere: {link}");
        }
        let policy = page.headers.get("content-security-policy").cloned().unwrap_or_default();
        assert!(policy.contains("default-src 'self'"), "{path}: {policy}");
    }
    let css = browser.get("/admin/static/admin.css").await;
    assert_eq!(css.status, 200);
    assert!(!css.body.contains("url("), "the stylesheet loads nothing");
}

#[tokio::test]
async fn a_dead_job_is_listed_and_retried_and_a_finished_one_is_not() {
    let db = TestDatabase::create().await;
    let app = builder().background(true, false).start(&db).await;
    staff_user(&app, STAFF).await;
    let mut browser = signed_in(&app).await;
    let jobs = app.context().jobs();
    // Registration sends emails through jobs that finish; this one has no handler
    // registered, so the worker marks it dead at once.
    register(&app, "member@example.com").await;
    jobs.enqueue("reports.nightly", &json!({"day": "2026-11-26"})).await.unwrap();
    let mut dead = None;
    for _ in 0..100 {
        let page = browser.get("/admin/jobs/?status=Killed").await;
        if let Some(link) =
            page.links().into_iter().find(|l| l.starts_with("/admin/jobs/") && l.len() > "/admin/jobs/".len())
        {
            assert!(page.shows("reports.nightly"));
            dead = Some(link);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let dead = dead.expect("the job died");
    let detail = browser.get(&dead).await;
    assert!(detail.shows("2026-11-26"), "the payload is shown: {}", detail.body);
    let retried = browser.submit(&dead, &format!("{dead}actions/retry/"), &[]).await;
    assert_eq!(retried.status, 303, "{}", retried.body);
    assert!(browser.get(&dead).await.shows("The job is queued again."));
    // It runs again — and, still without a handler, dies again.
    let mut died_again = false;
    for _ in 0..100 {
        let page = browser.get("/admin/jobs/?status=Killed").await;
        let detail = browser.get(&dead).await;
        if page.shows("reports.nightly") && (detail.shows("Killed") || !page.links().contains(&dead)) {
            died_again = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(died_again, "the retried job ran again");
    let log = browser.get("/admin/audit-log/?outcome=done").await;
    assert!(log.shows("retry"));

    // A job that finished cannot be retried.
    let mut done = None;
    for _ in 0..50 {
        let page = browser.get("/admin/jobs/?status=Done").await;
        if let Some(link) =
            page.links().into_iter().find(|l| l.starts_with("/admin/jobs/") && l.len() > "/admin/jobs/".len())
        {
            done = Some(link);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let done = done.expect("the registration's email jobs finished");
    let refused = browser.submit(&done, &format!("{done}actions/retry/"), &[]).await;
    assert_eq!(refused.status, 409);
    assert!(refused.shows("Only a failed or dead job can be retried."));
}

#[tokio::test]
async fn dashboard_figures_stop_counting_at_their_cap() {
    use saas_core::admin::{count_upto, table_size};
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    register(&app, "one@example.com").await;
    register(&app, "two@example.com").await;
    let pool = app.context().db();
    assert_eq!(count_upto(pool, "auth_users", &[], 10).await.unwrap().to_string(), "3");
    assert_eq!(count_upto(pool, "auth_users", &[], 2).await.unwrap().to_string(), "2+");
    assert_eq!(count_upto(pool, "auth_users WHERE is_active = FALSE", &[], 2).await.unwrap().to_string(), "0");
    assert_eq!(table_size(pool, "auth_users", 10).await.unwrap(), "3");
    assert_eq!(table_size(pool, "auth_users", 1).await.unwrap(), "1+", "a table never analysed has no estimate");
}
