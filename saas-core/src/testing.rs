//! Test harness (feature `testing`): a fresh database per test (SQLite by default,
//! PostgreSQL when `SAAS_TEST_DATABASE_URL=postgres://…`), Redis when
//! `SAAS_TEST_REDIS_URL` is set, a real server on loopback, an HTTP and a WebSocket client.
//!
//! A named server that cannot be reached fails the test; nothing is skipped.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

use crate::app::{App, SaasApp, SaasAppBuilder, ServeOptions};
use crate::config::Config;
use crate::context::AppContext;
use crate::module::Module;

/// The variable naming the PostgreSQL server tests run on (SQLite when unset).
pub const TEST_DATABASE_URL: &str = "SAAS_TEST_DATABASE_URL";
/// The variable naming the Redis server tests use (in-process equivalents when unset).
pub const TEST_REDIS_URL: &str = "SAAS_TEST_REDIS_URL";

/// A database that exists for one test: a temporary SQLite file, or a new PostgreSQL
/// database dropped when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    admin_url: Option<String>,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// Creates the database named by `SAAS_TEST_DATABASE_URL` (SQLite when unset).
    ///
    /// # Panics
    /// When the named PostgreSQL server cannot be reached: such a test must fail, not skip.
    pub async fn create() -> Self {
        let name = format!("saas_test_{}", uuid::Uuid::new_v4().simple());
        match std::env::var(TEST_DATABASE_URL).ok().filter(|v| !v.trim().is_empty()) {
            Some(server) if server.starts_with("postgres") => {
                let admin = sqlx::PgPool::connect(&server)
                    .await
                    .unwrap_or_else(|err| panic!("{TEST_DATABASE_URL}={server} is unreachable: {err}"));
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await
                    .unwrap_or_else(|err| panic!("cannot create test database {name}: {err}"));
                admin.close().await;
                Self { url: replace_database(&server, &name), admin_url: Some(server), name, _dir: None }
            }
            Some(other) if !other.starts_with("sqlite") => {
                panic!("{TEST_DATABASE_URL} must be a postgres:// or sqlite:// URL, not {other:?}")
            }
            _ => {
                let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("cannot create a temporary folder: {err}"));
                let url = format!("sqlite://{}", dir.path().join("app.db").display());
                Self { url, admin_url: None, name, _dir: Some(dir) }
            }
        }
    }

    /// The URL apps connect to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The Redis key prefix of apps on this database, so parallel tests never share keys.
    pub fn redis_prefix(&self) -> String {
        format!("test:{}:", self.name)
    }

    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.admin_url.is_some()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(admin_url) = self.admin_url.clone() else {
            return;
        };
        let name = self.name.clone();
        // Dropping runs inside the test's runtime; a plain thread with its own runtime
        // avoids blocking it.
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            // Bounded: a database that cannot be dropped now is left behind, never a stuck test.
            let drop_database = async move {
                if let Ok(admin) = sqlx::PgPool::connect(&admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await;
                    admin.close().await;
                }
            };
            let _ = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(30), drop_database).await });
        });
        let _ = dropper.join();
    }
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{name}?{query}"),
        None => format!("{root}/{name}"),
    }
}

/// The Redis URL of the test run, if any (`SAAS_TEST_REDIS_URL`).
pub fn test_redis_url() -> Option<String> {
    std::env::var(TEST_REDIS_URL).ok().filter(|v| !v.trim().is_empty())
}

/// The Redis of the test run, else the local server (`redis://127.0.0.1:6379`): for tests
/// of what only Redis does, such as several nodes sharing state. An unreachable server
/// fails the test.
pub fn redis_url() -> String {
    test_redis_url().unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

/// Builds a [`TestApp`] from modules and configuration overrides.
pub struct TestAppBuilder {
    modules: Vec<Box<dyn FnOnce(SaasAppBuilder) -> SaasAppBuilder + Send>>,
    vars: Vec<(String, String)>,
    options: ServeOptions,
    redis: Option<String>,
}

impl TestAppBuilder {
    /// Adds a module.
    pub fn module(mut self, module: impl Module) -> Self {
        self.modules.push(Box::new(move |builder| builder.module(module)));
        self
    }

    /// Adjusts the app builder (provide values, add routes).
    pub fn customize(mut self, f: impl FnOnce(SaasAppBuilder) -> SaasAppBuilder + Send + 'static) -> Self {
        self.modules.push(Box::new(f));
        self
    }

    /// Sets a configuration variable.
    pub fn var(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.push((name.to_owned(), value.into()));
        self
    }

    /// Whether the job worker and scheduler run in the test server (default: yes).
    pub fn background(mut self, worker: bool, scheduler: bool) -> Self {
        self.options = ServeOptions { worker, scheduler };
        self
    }

    /// Uses Redis at `url` (with a key prefix of its own) even when `SAAS_TEST_REDIS_URL` is unset.
    pub fn redis(mut self, url: impl Into<String>, prefix: impl Into<String>) -> Self {
        self.redis = Some(url.into());
        self.vars.push(("REDIS_PREFIX".into(), prefix.into()));
        self
    }

    /// Builds the app on `database` and serves it on a free loopback port.
    pub async fn start(self, database: &TestDatabase) -> TestApp {
        let options = self.options;
        let app = self.build(database).await;
        TestApp::serve(app, options).await
    }

    /// Builds the app on `database` without serving it.
    pub async fn build(self, database: &TestDatabase) -> App {
        let mut vars: Vec<(String, String)> = vec![
            ("DEBUG".into(), "true".into()),
            ("SECRET_KEY".into(), "test-secret-key-0123456789abcdef".into()),
            ("DATABASE_URL".into(), database.url().to_owned()),
            ("JOB_POLL_INTERVAL_MS".into(), "50".into()),
            ("EMAIL_BACKEND".into(), "console".into()),
        ];
        if let Some(url) = self.redis.or_else(test_redis_url) {
            vars.push(("REDIS_URL".into(), url));
            // Apps on one test database share one namespace, as nodes of one service do.
            vars.push(("REDIS_PREFIX".into(), database.redis_prefix()));
        }
        vars.extend(self.vars);
        let config = Config::from_vars(vars).unwrap_or_else(|err| panic!("bad test configuration: {err}"));
        let mut builder = SaasApp::builder(config).title("test");
        for add in self.modules {
            builder = add(builder);
        }
        builder.build().await.unwrap_or_else(|err| panic!("the test app failed to build: {err}"))
    }
}

/// A running app on a loopback port with an HTTP client; stopped when dropped.
pub struct TestApp {
    /// Where the server listens.
    pub addr: SocketAddr,
    ctx: AppContext,
    client: reqwest::Client,
    stop: CancellationToken,
    server: Option<JoinHandle<()>>,
}

impl TestApp {
    /// Starts building a test app.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder { modules: Vec::new(), vars: Vec::new(), options: ServeOptions::default(), redis: None }
    }

    /// Serves a built app on a free loopback port.
    pub async fn serve(app: App, options: ServeOptions) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|err| panic!("cannot bind a loopback port: {err}"));
        let addr = listener.local_addr().unwrap_or_else(|err| panic!("no local address: {err}"));
        let ctx = app.context().clone();
        let stop = CancellationToken::new();
        let signal = stop.clone();
        let server = tokio::spawn(async move {
            if let Err(err) = app.serve(listener, options, async move { signal.cancelled().await }).await {
                tracing::error!(error = %err, "test server failed");
            }
        });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|err| panic!("cannot build an HTTP client: {err}"));
        Self { addr, ctx, client, stop, server: Some(server) }
    }

    /// The app's context (services, database, jobs).
    pub fn context(&self) -> &AppContext {
        &self.ctx
    }

    /// `http://127.0.0.1:port` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Starts a request to `path`.
    pub fn request(&self, method: Method, path: &str) -> TestRequest {
        TestRequest { inner: self.client.request(method, self.url(path)) }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.request(Method::GET, path).send().await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &impl Serialize) -> TestResponse {
        self.request(Method::POST, path).json(body).send().await
    }

    /// Opens a WebSocket to `path` (`ws://127.0.0.1:port` + path).
    pub async fn websocket(&self, path: &str) -> TestWebSocket {
        TestWebSocket::connect(&format!("ws://{}{path}", self.addr)).await
    }

    /// Stops the server gracefully and waits for it (worker included).
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A request being built.
pub struct TestRequest {
    inner: reqwest::RequestBuilder,
}

impl TestRequest {
    /// Adds `Authorization: Bearer token`.
    pub fn bearer(self, token: &str) -> Self {
        Self { inner: self.inner.bearer_auth(token) }
    }

    /// Adds a header.
    pub fn header(self, name: &str, value: &str) -> Self {
        Self { inner: self.inner.header(name, value) }
    }

    /// A JSON body.
    pub fn json(self, body: &impl Serialize) -> Self {
        Self { inner: self.inner.json(body) }
    }

    /// A raw body.
    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        Self { inner: self.inner.body(body) }
    }

    /// Sends it and reads the whole answer.
    pub async fn send(self) -> TestResponse {
        let response = self.inner.send().await.unwrap_or_else(|err| panic!("request failed: {err}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap_or_else(|err| panic!("cannot read the body: {err}"));
        TestResponse { status, headers, body }
    }
}

/// A complete HTTP answer.
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The raw body.
    pub body: Bytes,
}

impl TestResponse {
    /// The body as JSON (panics with the body when it is not JSON).
    pub fn json(&self) -> Value {
        self.json_as()
    }

    /// The body deserialised as `T`.
    pub fn json_as<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("body is not the expected JSON ({err}): {}", self.text()))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, showing the body when it differs; returns self.
    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(self.status, expected, "unexpected status; body: {}", self.text());
        self
    }

    /// Asserts an error envelope with `status` and `code`; returns the envelope's `error`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> Value {
        self.assert_status(status);
        assert!(
            self.header("content-type").is_some_and(|v| v.starts_with("application/json")),
            "error answers are JSON; got {:?}",
            self.header("content-type")
        );
        let body = self.json();
        let error = body.get("error").cloned().unwrap_or_else(|| panic!("no error envelope: {body}"));
        assert_eq!(error["code"], code, "unexpected error code in {body}");
        assert!(error["message"].is_string(), "the envelope has a message: {body}");
        assert!(error["details"].is_object(), "the envelope has details: {body}");
        error
    }
}

/// A WebSocket client speaking JSON text frames.
pub struct TestWebSocket {
    stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

/// What the server sent, as seen by [`TestWebSocket::next`].
#[derive(Debug, Clone, PartialEq)]
pub enum WsEvent {
    /// A JSON text frame.
    Json(Value),
    /// A text frame that is not JSON.
    Text(String),
    /// The server closed the socket with this code.
    Closed(Option<u16>),
}

impl TestWebSocket {
    /// Connects to a `ws://` URL.
    pub async fn connect(url: &str) -> Self {
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .unwrap_or_else(|err| panic!("websocket connect to {url} failed: {err}"));
        Self { stream }
    }

    /// Sends a JSON text frame.
    pub async fn send_json(&mut self, value: &Value) {
        self.send_text(&value.to_string()).await;
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(WsMessage::text(text.to_owned()))
            .await
            .unwrap_or_else(|err| panic!("websocket send failed: {err}"));
    }

    /// The next text frame or close, waiting at most `timeout`; `None` on timeout.
    pub async fn next_within(&mut self, timeout: Duration) -> Option<WsEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()?;
            match frame {
                None => return Some(WsEvent::Closed(None)),
                Some(Err(_)) => return Some(WsEvent::Closed(None)),
                Some(Ok(WsMessage::Text(text))) => {
                    return Some(match serde_json::from_str(text.as_str()) {
                        Ok(value) => WsEvent::Json(value),
                        Err(_) => WsEvent::Text(text.as_str().to_owned()),
                    });
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    return Some(WsEvent::Closed(frame.map(|f| u16::from(f.code))));
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next JSON frame within five seconds (panics otherwise).
    pub async fn next_json(&mut self) -> Value {
        match self.next_within(Duration::from_secs(5)).await {
            Some(WsEvent::Json(value)) => value,
            other => panic!("expected a JSON frame, got {other:?}"),
        }
    }

    /// Closes the socket.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// Polls `check` every 50 ms until it holds (`true`) or `timeout` passes (`false`). A poll
/// that does not answer in the time left counts as failed, so a stuck check cannot hang a test.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now()).max(Duration::from_millis(100));
        if tokio::time::timeout(remaining, check()).await.unwrap_or(false) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `check` holds, polling every 50 ms for up to 10 s; panics naming `what` then.
pub async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}
