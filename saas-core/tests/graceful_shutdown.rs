//! SIGTERM during a slow request: the request completes and the process exits 0.
//!
//! This test binary runs itself twice: as the test (no arguments) and as the server child
//! (`SAAS_GRACEFUL_CHILD=1`), so the signal reaches a real process of its own.

mod common;

use std::process::{ExitCode, Stdio};
use std::time::Duration;

use saas_core::testing::TestDatabase;
use saas_core::{Config, SaasApp, ServeOptions};
use tokio::io::{AsyncBufReadExt, BufReader};

const CHILD: &str = "SAAS_GRACEFUL_CHILD";

#[tokio::main]
async fn main() -> ExitCode {
    if let Ok(url) = std::env::var(CHILD) {
        return child(&url).await;
    }
    println!("running 1 test");
    parent().await;
    println!("test sigterm_lets_the_in_flight_request_finish ... ok");
    println!("\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
    ExitCode::SUCCESS
}

async fn child(database_url: &str) -> ExitCode {
    let config = Config::from_vars([("DEBUG", "true"), ("DATABASE_URL", database_url), ("BIND_ADDR", "127.0.0.1:0")])
        .expect("config");
    let app = SaasApp::builder(config).module(common::TestModule { cron: false }).build().await.expect("build");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    println!("listening {}", listener.local_addr().expect("addr"));
    match app.serve(listener, ServeOptions::default(), saas_core::app::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

async fn parent() {
    let db = TestDatabase::create().await;
    let exe = std::env::current_exe().expect("own path");
    let mut server = tokio::process::Command::new(exe)
        .env(CHILD, db.url())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the server");
    let mut lines = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let addr = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the server starts")
            .expect("read")
            .expect("a line");
        if let Some(addr) = line.strip_prefix("listening ") {
            break addr.to_owned();
        }
    };
    let client = reqwest::Client::new();
    let request = tokio::spawn({
        let url = format!("http://{addr}/api/v1/test/slow/");
        async move { client.get(url).send().await }
    });
    // The request is in its handler when the signal comes.
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the request reaches its handler")
            .expect("read")
            .expect("a line");
        if line == "slow request started" {
            break;
        }
    }
    let pid = server.id().expect("pid").to_string();
    let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(status.success());

    let response = request.await.expect("join").expect("the in-flight request is answered");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "done");
    let exit =
        tokio::time::timeout(Duration::from_secs(40), server.wait()).await.expect("the server exits").expect("wait");
    assert!(exit.success(), "the server exits 0 after SIGTERM, got {exit:?}");

    let refused = reqwest::Client::new().get(format!("http://{addr}/health/")).send().await;
    assert!(refused.is_err(), "nothing listens after shutdown");
}
