//! The reference server binary, driven as an operator would: its commands, its refusal to
//! run without a secret in production mode, and `serve` answering `/health/`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use saas_core::testing::TestDatabase;
use serde_json::Value;

fn server(db: &TestDatabase) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_saas-server"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DEBUG", "true")
        .env("DATABASE_URL", db.url())
        .env("RUST_LOG", "warn");
    if let Some(redis) = saas_core::testing::test_redis_url() {
        command.env("REDIS_URL", redis).env("REDIS_PREFIX", db.redis_prefix());
    }
    command
}

#[tokio::test]
async fn openapi_prints_the_document() {
    let db = TestDatabase::create().await;
    let output = server(&db).args(["openapi", "--json"]).output().expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let doc: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["paths"]["/health/"].is_object());

    let yaml = server(&db).arg("openapi").output().expect("run");
    assert!(String::from_utf8_lossy(&yaml.stdout).starts_with("openapi: 3.1"));
}

#[tokio::test]
async fn migrate_applies_migrations_and_exits() {
    let db = TestDatabase::create().await;
    let output = server(&db).arg("migrate").output().expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("migrations applied"));
}

#[tokio::test]
async fn production_mode_refuses_to_start_without_a_secret_key() {
    let db = TestDatabase::create().await;
    let output = server(&db).env("DEBUG", "false").arg("serve").output().expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SECRET_KEY"), "{stderr}");
}

#[tokio::test]
async fn unknown_commands_are_refused() {
    let db = TestDatabase::create().await;
    let output = server(&db).arg("frobnicate").output().expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("frobnicate"));
}

#[tokio::test]
async fn serve_answers_health_and_stops_on_sigterm() {
    let db = TestDatabase::create().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = server(&db)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .arg("serve")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/health/");
    let deadline = Instant::now() + Duration::from_secs(30);
    let body: Value = loop {
        match client.get(&url).send().await {
            Ok(response) => {
                assert_eq!(response.status(), 200);
                break response.json().await.unwrap();
            }
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(err) => panic!("the server did not come up: {err}"),
        }
    };
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["database"], "ok");

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn createsuperuser_makes_a_staff_account_that_can_sign_in() {
    use std::io::Write;
    let db = TestDatabase::create().await;
    let output = server(&db)
        .args(["createsuperuser", "--email", "Root.Admin@Example.com", "--password", "an admin passphrase"])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("root.admin@example.com"));

    // The password may come on stdin instead.
    let mut child = server(&db)
        .args(["createsuperuser", "--email", "ops@example.com"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(b"another admin passphrase\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let weak = server(&db).args(["createsuperuser", "--email", "x@example.com", "--password", "123"]).output().unwrap();
    assert!(!weak.status.success());

    let db_url = db.url().to_owned();
    let config = saas_core::Config::from_vars([("DEBUG", "true"), ("DATABASE_URL", db_url.as_str())]).unwrap();
    let app = saas_core::SaasApp::builder(config).module(saas_auth::AuthModule::default()).build().await.unwrap();
    let service = saas_auth::AuthService::get(app.context()).unwrap();
    let pair = service.login("root.admin@example.com", "an admin passphrase").await.expect("the superuser signs in");
    let row = service.user_row(pair.user.id).await.unwrap().unwrap();
    assert!(row.is_staff && row.is_active && row.is_email_verified);
    service.login("ops@example.com", "another admin passphrase").await.expect("stdin password");
}
