//! The proof of `saas new`, end to end: an app made with `--sdk-path <this checkout>` on
//! SQLite and on PostgreSQL, grown with `saas generate module notes` and `saas generate
//! strategy tip`, its own tests run with `cargo test` (offline, on the workspace's
//! Cargo.lock and target folder), then its server started and asked for `/health/` and a
//! route of every domain.
//!
//! It builds two apps, so it runs only with `SAAS_CLI_E2E=1` (`.ci/run` runs it once, in a
//! step of its own). PostgreSQL is the one named by `SAAS_TEST_DATABASE_URL` when that is a
//! postgres:// URL, else `postgres://postgres@127.0.0.1:5432/postgres`; if it cannot be
//! reached, the test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[tokio::test]
async fn apps_on_sqlite_and_postgres_are_made_grown_tested_and_served() {
    if std::env::var("SAAS_CLI_E2E").as_deref() != Ok("1") {
        println!("skipped: the end-to-end test of generated apps runs with SAAS_CLI_E2E=1 (its own step in .ci/run)");
        return;
    }
    let postgres = postgres_server().await;
    let first = end_to_end(Database::Sqlite).await;
    let second = end_to_end(Database::Postgres(postgres)).await;
    // The first build compiled the SDK for the app (and any dependency whose features differ
    // from what the target folder already had); the second must compile the app alone.
    assert_eq!(second, ["demo"], "the second app rebuilt more than itself");
    println!("compiled by the first app's build: {}", first.join(", "));
}

enum Database {
    Sqlite,
    /// The admin URL of a PostgreSQL server.
    Postgres(String),
}

/// Makes, grows, tests and serves one app; the crates its `cargo test` compiled.
async fn end_to_end(database: Database) -> Vec<String> {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf();
    let db_name = match database {
        Database::Sqlite => "sqlite",
        Database::Postgres(_) => "postgres",
    };
    let new = saas(dir.path(), &["new", "demo", "--db", db_name, "--sdk-path", workspace.to_str().unwrap()]);
    let app = dir.path().join("demo");
    assert!(stdout(&new).contains("Next:"), "{}", stdout(&new));
    println!("[{db_name}] saas new: {:?}", started.elapsed());
    saas(&app, &["generate", "module", "notes"]);
    saas(&app, &["generate", "strategy", "tip"]);
    std::fs::copy(workspace.join("Cargo.lock"), app.join("Cargo.lock")).expect("copy Cargo.lock");

    if Command::new("rustfmt").arg("--version").output().is_ok_and(|out| out.status.success()) {
        let fmt = cargo(&["fmt", "--check"]).current_dir(&app).output().expect("cargo fmt");
        assert!(fmt.status.success(), "the generated app is not rustfmt-clean:\n{}", stdout(&fmt));
    }

    let build_started = Instant::now();
    let mut test = cargo(&["test", "--offline"]);
    test.current_dir(&app).env("CARGO_TARGET_DIR", target_dir());
    test.env_remove("SAAS_TEST_REDIS_URL");
    let admin = match &database {
        Database::Sqlite => {
            test.env_remove("SAAS_TEST_DATABASE_URL");
            None
        }
        Database::Postgres(admin) => {
            test.env("SAAS_TEST_DATABASE_URL", admin);
            Some(admin.clone())
        }
    };
    let output = test.output().expect("run cargo test");
    let log = format!("{}{}", stdout(&output), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "cargo test of the generated app failed:\n{log}");
    for test_name in ["notes::an_owner_creates", "tip_strategy::a_paid_tip_order", "health::the_app_is_healthy"] {
        assert!(log.contains(&format!("test {test_name}")), "{test_name} did not run:\n{log}");
    }
    let compiled: Vec<String> = log
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("Compiling "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    println!("[{db_name}] cargo test of the app: {:?}, compiled {}", build_started.elapsed(), compiled.join(" "));
    assert_same_versions(&workspace.join("Cargo.lock"), &app.join("Cargo.lock"));

    let database_url = match &admin {
        None => format!("sqlite://{}", dir.path().join("app.db").display()),
        Some(admin) => fresh_database(admin).await,
    };
    serve_and_check(&target_dir().join("debug/demo"), &database_url).await;
    if let Some(admin) = admin {
        drop_database(&admin, &database_url).await;
    }
    println!("[{db_name}] end to end: {:?}", started.elapsed());
    compiled
}

/// Every package of the app's lock file is at the version the workspace's has: nothing was
/// re-resolved.
fn assert_same_versions(workspace_lock: &Path, app_lock: &Path) {
    let packages = |path: &Path| -> Vec<(String, String)> {
        let lock: toml::Table = toml::from_str(&std::fs::read_to_string(path).expect("a lock file")).expect("TOML");
        lock["package"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|p| (p["name"].as_str().unwrap().to_owned(), p["version"].as_str().unwrap().to_owned()))
            .collect()
    };
    let known = packages(workspace_lock);
    for package in packages(app_lock).into_iter().filter(|(name, _)| name != "demo") {
        assert!(known.contains(&package), "{package:?} is not in the workspace's Cargo.lock: it was re-resolved");
    }
}

/// Starts the app's server on a free port and checks `/health/` and a route of each domain.
async fn serve_and_check(binary: &Path, database_url: &str) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = Command::new(binary)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DEBUG", "true")
        .env("DATABASE_URL", database_url)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the generated server");
    let server = Server(server);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    let health: Value = loop {
        match client.get(format!("{base}/health/")).send().await {
            Ok(response) => {
                assert_eq!(response.status(), StatusCode::OK);
                break response.json().await.unwrap();
            }
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(err) => panic!("the generated server did not come up: {err}"),
        }
    };
    assert_eq!(health["status"], "ok", "{health}");

    let registration = json!({"email": "ann@example.com", "password": "correct horse battery staple"});
    let response = client.post(format!("{base}/api/v1/auth/registration/")).json(&registration).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let token = response.json::<Value>().await.unwrap()["access"].as_str().expect("an access token").to_owned();

    for path in ["/api/v1/chat/conversations/", "/api/v1/notifications/", "/api/v1/payments/orders/", "/api/v1/notes/"]
    {
        let anonymous = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{path} is mounted and protected");
        let signed_in = client.get(format!("{base}{path}")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(signed_in.status(), StatusCode::OK, "{path} answers its user");
    }
    let note = client.post(format!("{base}/api/v1/notes/")).bearer_auth(&token).json(&json!({"name": "First"}));
    assert_eq!(note.send().await.unwrap().status(), StatusCode::CREATED);
    let order = json!({"strategy_type": "tip", "amount_cents": 500});
    let refused = client.post(format!("{base}/api/v1/payments/orders/")).bearer_auth(&token).json(&order);
    let refused: Value = refused.send().await.unwrap().json().await.unwrap();
    assert_eq!(refused["error"]["details"]["fields"]["payee_id"][0], "This payment needs a payee.", "{refused}");
    let schema: Value = client.get(format!("{base}/schema/?format=json")).send().await.unwrap().json().await.unwrap();
    assert!(schema["paths"]["/api/v1/notes/{id}/"].is_object(), "the module is in the OpenAPI document");
    drop(server);
}

/// The child server, stopped when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn saas(dir: &Path, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_saas")).args(args).current_dir(dir).output().expect("run saas");
    assert!(
        output.status.success(),
        "saas {args:?} failed:\n{}{}",
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `cargo` with the environment of a plain shell: without the variables cargo sets for this
/// test (`CARGO_PKG_NAME`, `OUT_DIR`, …), which build scripts such as ring's watch — built
/// with them, those crates would be rebuilt by the next build run from a shell.
fn cargo(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command.args(args);
    let set_for_tests = |name: &str| {
        ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_BIN_", "CARGO_CRATE_", "CARGO_TARGET_TMPDIR", "CARGO_PRIMARY_PACKAGE"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
            || matches!(name, "OUT_DIR" | "CARGO_RUSTC_CURRENT_DIR")
    };
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_for_tests) {
            command.env_remove(name);
        }
    }
    command
}

/// The target folder this test was built in (…/target/debug/deps/e2e-…).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary");
    exe.ancestors().nth(3).expect("the target folder").to_path_buf()
}

/// The PostgreSQL server to use; the test fails when it cannot be reached.
async fn postgres_server() -> String {
    let url = std::env::var("SAAS_TEST_DATABASE_URL")
        .ok()
        .filter(|url| url.starts_with("postgres"))
        .unwrap_or_else(|| DEFAULT_POSTGRES.to_owned());
    match PgConnection::connect(&url).await {
        Ok(connection) => {
            let _ = connection.close().await;
            url
        }
        Err(err) => {
            panic!("PostgreSQL at {url} is unreachable ({err}): start it, or name one in SAAS_TEST_DATABASE_URL")
        }
    }
}

/// A new, empty database on the server of `admin`; its URL.
async fn fresh_database(admin: &str) -> String {
    let name = format!("saas_cli_e2e_{}", std::process::id());
    let mut connection = PgConnection::connect(admin).await.expect("connect to PostgreSQL");
    connection.execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await.unwrap();
    connection.execute(AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create the database");
    let _ = connection.close().await;
    let (base, query) = admin.split_once('?').map_or((admin, None), |(base, query)| (base, Some(query)));
    let root = &base[..base.rfind('/').filter(|&i| i > "postgres://".len()).unwrap_or(base.len())];
    match query {
        Some(query) => format!("{root}/{name}?{query}"),
        None => format!("{root}/{name}"),
    }
}

async fn drop_database(admin: &str, url: &str) {
    let name = url.split('?').next().and_then(|base| base.rsplit('/').next()).unwrap_or_default();
    if let Ok(mut connection) = PgConnection::connect(admin).await {
        let _ = connection.execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await;
        let _ = connection.close().await;
    }
}
