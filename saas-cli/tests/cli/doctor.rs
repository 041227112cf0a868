//! `saas doctor` against services on loopback: an SMTP server that greets, a Stripe API that
//! checks the key, and ports where nothing listens.

use std::path::Path;
use std::process::Output;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{new_app, stdout, temp};

/// `saas doctor` in `app` with only `env` (and `PATH`) in its environment.
async fn doctor(app: &Path, env: &[(&str, &str)]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_saas"))
        .arg("doctor")
        .current_dir(app)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run saas doctor")
}

/// A line of the report that starts with `mark` and names `check`.
#[track_caller]
fn line<'a>(report: &'a str, mark: &str, check: &str) -> &'a str {
    report
        .lines()
        .find(|line| line.starts_with(mark) && line[mark.len()..].trim_start().starts_with(check))
        .unwrap_or_else(|| panic!("no `{mark} {check}` line in:\n{report}"))
}

/// A port on loopback where nothing listens.
async fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port()
}

/// An SMTP server that sends `greeting` to every connection.
async fn mail_server(greeting: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.write_all(greeting.as_bytes()).await;
        }
    });
    port
}

/// A Stripe API that answers 200 to `Bearer sk_test_accepted1234`, 401 to anything else.
async fn stripe_api() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = vec![0u8; 4096];
            let read = socket.read(&mut request).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&request[..read]).to_ascii_lowercase();
            let accepted = request.starts_with("get /v1/balance ")
                && request.contains("authorization: bearer sk_test_accepted1234\r\n");
            let (status, body) = if accepted { ("200 OK", "{}") } else { ("401 Unauthorized", "{\"error\":{}}") };
            let answer =
                format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    url
}

#[tokio::test]
async fn a_working_set_up_passes_every_check() {
    let dir = temp();
    let app = new_app(dir.path(), "demo", &[]);
    let smtp = mail_server("220 mail.test ESMTP ready\r\n").await.to_string();
    let stripe = stripe_api().await;
    let smtp_url = format!("smtp://127.0.0.1:{smtp}");
    let env = [
        ("DEBUG", "true"),
        ("DATABASE_URL", "sqlite://data/app.db"),
        ("EMAIL_BACKEND", "smtp"),
        ("SMTP_URL", smtp_url.as_str()),
        ("STRIPE_SECRET_KEY", "sk_test_accepted1234"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_test"),
        ("STRIPE_API_BASE", stripe.as_str()),
    ];
    let output = doctor(&app, &env).await;
    let report = stdout(&output);
    assert!(output.status.success(), "{report}");
    assert!(line(&report, "✓", "configuration").contains("DEBUG=true"));
    assert!(line(&report, "✓", "database").contains("creates it on first run"), "{report}");
    assert!(line(&report, "-", "redis").contains("REDIS_URL is not set"));
    assert!(line(&report, "✓", "smtp").contains("220 mail.test ESMTP ready"));
    assert!(line(&report, "✓", "stripe key").contains("test mode"));
    assert!(line(&report, "✓", "stripe api").contains("accepted the key"));
    line(&report, "✓", "stripe webhooks");
    assert!(report.contains("All checks passed."));

    // Once the database exists, it is opened and queried.
    std::fs::create_dir_all(app.join("data")).unwrap();
    std::fs::write(app.join(".env"), "DATABASE_URL=sqlite://data/app.db\n").unwrap();
    let created = saas_core::Db::connect(&format!("sqlite://{}", app.join("data/app.db").display())).await.unwrap();
    created.close().await;
    let output = doctor(&app, &env[..1]).await;
    let report = stdout(&output);
    assert!(line(&report, "✓", "database").contains("answers (sqlite)"), "{report}");
    assert!(line(&report, "✗", "stripe key").contains("not set"), "a payments app needs its key: {report}");
    assert!(report.contains("(settings from .env and the environment)"));
}

#[tokio::test]
async fn each_failure_is_reported_with_its_fix_and_exit_code_1() {
    let dir = temp();
    let app = new_app(dir.path(), "demo", &[]);
    let stripe = stripe_api().await;
    let (db_port, redis_port, smtp_port) = (closed_port().await, closed_port().await, closed_port().await);
    let database = format!("postgres://app:secret@127.0.0.1:{db_port}/app");
    let redis = format!("redis://127.0.0.1:{redis_port}");
    let smtp = format!("smtp://127.0.0.1:{smtp_port}");
    std::fs::write(app.join(".env"), format!("DATABASE_URL={database}\nREDIS_URL={redis}\n")).unwrap();
    let env = [
        ("DEBUG", "false"),
        ("EMAIL_BACKEND", "smtp"),
        ("SMTP_URL", smtp.as_str()),
        ("STRIPE_SECRET_KEY", "sk_test_refused12345"),
        ("STRIPE_API_BASE", stripe.as_str()),
    ];
    let output = doctor(&app, &env).await;
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(line(&report, "✗", "configuration").contains("SECRET_KEY"));
    let database_line = line(&report, "✗", "database");
    assert!(database_line.contains("app:***@127.0.0.1"), "the password is hidden: {database_line}");
    assert!(!report.contains("secret@"), "{report}");
    line(&report, "✗", "redis");
    assert!(line(&report, "✗", "smtp").contains(&format!("cannot connect to 127.0.0.1:{smtp_port}")));
    assert!(line(&report, "✗", "stripe api").contains("refused the key (401)"));
    assert!(line(&report, "✗", "stripe webhooks").contains("not set"));
    let fixes = report.lines().filter(|line| line.trim_start().starts_with("fix: ")).count();
    assert_eq!(fixes, 6, "one fix per failed check:\n{report}");
    assert!(report.contains("start PostgreSQL"), "{report}");
    assert!(report.contains("6 checks failed."));
}

#[tokio::test]
async fn a_wrong_kind_of_server_or_key_is_named() {
    let dir = temp();
    let app = new_app(dir.path(), "talk", &["--domains", "chat"]);
    let not_smtp = mail_server("HTTP/1.1 400 Bad Request\r\n").await.to_string();
    let smtp_url = format!("smtp://127.0.0.1:{not_smtp}");
    let env = [("DEBUG", "true"), ("EMAIL_BACKEND", "smtp"), ("SMTP_URL", smtp_url.as_str())];
    let report = stdout(&doctor(&app, &env).await);
    assert!(line(&report, "✗", "smtp").contains("is not an SMTP server"), "{report}");
    assert!(line(&report, "-", "stripe").contains("no payments"), "{report}");

    let env = [("DEBUG", "true"), ("STRIPE_SECRET_KEY", "pk_test_publishable123")];
    let report = stdout(&doctor(&app, &env).await);
    assert!(line(&report, "✗", "stripe key").contains("publishable"), "{report}");
    assert!(line(&report, "-", "stripe api").contains("without a valid key"), "{report}");
}
