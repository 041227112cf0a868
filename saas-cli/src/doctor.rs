//! `saas doctor`: reads the app's settings (`.env`, then the environment) and checks that
//! they parse and that the services they name answer — the database, Redis, the SMTP server
//! and Stripe — one line per check, each failure with its fix. Exit code 1 when one fails.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use reqwest::Url;
use saas_core::cache::{Cache, RedisCache};
use saas_core::reexports::sqlx::sqlite::SqliteConnectOptions;
use saas_core::{Config, Db, db::redact_url};
use tokio::io::AsyncBufReadExt;

use crate::app::App;
use crate::{CliResult, Failure};

/// How long one service may take to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// What one check found.
enum Outcome {
    /// It works; what was seen.
    Passed(String),
    /// Not checked, and why (not configured, not used).
    Skipped(String),
    /// It does not work: the problem and how to fix it.
    Failed { problem: String, fix: String },
}

fn failed(problem: impl Into<String>, fix: impl Into<String>) -> Outcome {
    Outcome::Failed { problem: problem.into(), fix: fix.into() }
}

/// Runs `saas doctor` in the app around the current folder (or, outside an app, on the
/// current folder's `.env` and the environment).
pub fn run() -> CliResult<ExitCode> {
    let here = std::env::current_dir().map_err(|err| Failure::new(format!("no current folder: {err}")))?;
    let app = App::find(&here).ok();
    let root = app.as_ref().map_or(here, |app| app.root.clone());
    // Relative paths in the settings (the SQLite file) mean what they mean to the app, run here.
    std::env::set_current_dir(&root).map_err(|err| Failure::new(format!("cannot enter {}: {err}", root.display())))?;
    let (vars, source) = read_settings(&root)?;
    println!("Checking {} (settings from {source})", root.display());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure::new(format!("cannot start the async runtime: {err}")))?;
    let payments = app.as_ref().is_some_and(|app| app.domains.payments);
    let checks = runtime.block_on(check_all(&vars, payments));
    let mut failures = 0;
    for (name, outcome) in &checks {
        match outcome {
            Outcome::Passed(detail) => println!("✓ {name:<16} {detail}"),
            Outcome::Skipped(detail) => println!("- {name:<16} {detail}"),
            Outcome::Failed { problem, fix } => {
                failures += 1;
                println!("✗ {name:<16} {problem}");
                println!("  {:<16} fix: {fix}", "");
            }
        }
    }
    if failures == 0 {
        println!("All checks passed.");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failures} check{} failed.", if failures == 1 { "" } else { "s" });
        Ok(ExitCode::FAILURE)
    }
}

/// `.env` of the app (when there is one) overlaid by the environment, as the app reads them.
fn read_settings(root: &Path) -> CliResult<(HashMap<String, String>, &'static str)> {
    let mut vars = HashMap::new();
    let env_file = root.join(".env");
    let source = if env_file.is_file() {
        let entries = dotenvy::from_path_iter(&env_file)
            .map_err(|err| Failure::new(format!("cannot read {}: {err}", env_file.display())))?;
        for entry in entries {
            let (key, value) = entry
                .map_err(|err| Failure::new(format!("{} has a line that does not parse: {err}", env_file.display())))?;
            vars.insert(key, value);
        }
        ".env and the environment"
    } else {
        "the environment; no .env here (copy .env.example)"
    };
    vars.extend(std::env::vars());
    Ok((vars, source))
}

async fn check_all(vars: &HashMap<String, String>, payments: bool) -> Vec<(&'static str, Outcome)> {
    let var = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let database_url = var("DATABASE_URL").unwrap_or("sqlite://data/app.db");
    let mut checks = vec![
        ("configuration", check_config(vars)),
        ("database", check_database(database_url).await),
        ("redis", check_redis(var("REDIS_URL")).await),
        ("smtp", check_smtp(var("EMAIL_BACKEND").unwrap_or("console"), var("SMTP_URL")).await),
    ];
    let secret_key = var("STRIPE_SECRET_KEY");
    if payments || secret_key.is_some() {
        let key = check_stripe_key(secret_key);
        let api = match (&key, secret_key) {
            (Outcome::Passed(_), Some(key)) => {
                check_stripe_api(var("STRIPE_API_BASE").unwrap_or("https://api.stripe.com"), key).await
            }
            _ => Outcome::Skipped("not checked without a valid key".into()),
        };
        checks.push(("stripe key", key));
        checks.push(("stripe api", api));
        checks.push(("stripe webhooks", check_webhook_secret(var("STRIPE_WEBHOOK_SECRET"))));
    } else {
        checks.push(("stripe", Outcome::Skipped("the app has no payments and STRIPE_SECRET_KEY is not set".into())));
    }
    checks
}

fn check_config(vars: &HashMap<String, String>) -> Outcome {
    match Config::from_vars(vars.clone()) {
        Ok(config) => Outcome::Passed(format!(
            "DEBUG={}, listening on {}, email by {}",
            config.debug, config.bind_addr, config.email_backend
        )),
        Err(err) => {
            let fix = match err.details().get("variable").and_then(|v| v.as_str()) {
                Some("SECRET_KEY") => "set SECRET_KEY in .env to a long random string (openssl rand -hex 32), \
                                       or DEBUG=true for development"
                    .to_owned(),
                Some(variable) => format!("correct {variable} in .env (see .env.example)"),
                None => "correct .env (see .env.example)".to_owned(),
            };
            failed(err.message(), fix)
        }
    }
}

async fn check_database(url: &str) -> Outcome {
    let shown = redact_url(url);
    if url.starts_with("sqlite:") && !url.contains(":memory:") {
        let file = match url.parse::<SqliteConnectOptions>() {
            Ok(options) => options.get_filename().to_path_buf(),
            Err(err) => return failed(format!("{shown} does not parse: {err}"), "correct DATABASE_URL in .env"),
        };
        if !file.exists() {
            return Outcome::Passed(format!("{} does not exist yet: the app creates it on first run", file.display()));
        }
    }
    let fix = if url.starts_with("postgres") {
        "start PostgreSQL (docker compose up -d db) or correct DATABASE_URL in .env"
    } else {
        "correct DATABASE_URL in .env (sqlite://data/app.db or postgres://user:password@host/db)"
    };
    let answered = tokio::time::timeout(TIMEOUT * 2, async {
        let db = Db::connect(url).await?;
        let ping = db.ping().await;
        db.close().await;
        ping.map(|()| db.backend_name())
    })
    .await;
    match answered {
        Ok(Ok(backend)) => Outcome::Passed(format!("{shown} answers ({backend})")),
        Ok(Err(err)) => failed(err.message(), fix),
        Err(_) => failed(format!("{shown} did not answer within {} s", (TIMEOUT * 2).as_secs()), fix),
    }
}

async fn check_redis(url: Option<&str>) -> Outcome {
    let Some(url) = url else {
        return Outcome::Skipped("REDIS_URL is not set: pub/sub, cache and jobs stay in this process".into());
    };
    let shown = redact_url(url);
    let fix = "start Redis (docker compose up -d redis) or correct REDIS_URL in .env";
    let answered = tokio::time::timeout(TIMEOUT, async {
        let cache = RedisCache::connect(url, "saas-doctor:").await?;
        cache.get("ping").await
    })
    .await;
    match answered {
        Ok(Ok(_)) => Outcome::Passed(format!("{shown} answers")),
        Ok(Err(err)) => failed(format!("{shown}: {}", err.message()), fix),
        Err(_) => failed(format!("{shown} did not answer within {} s", TIMEOUT.as_secs()), fix),
    }
}

async fn check_smtp(backend: &str, url: Option<&str>) -> Outcome {
    if !backend.eq_ignore_ascii_case("smtp") {
        return Outcome::Skipped(format!("EMAIL_BACKEND={backend}: no mail server used"));
    }
    let Some(url) = url else {
        return failed("EMAIL_BACKEND=smtp but SMTP_URL is not set", "set SMTP_URL=smtp://host:port in .env");
    };
    let parsed = match Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "smtp" | "smtps") && parsed.host_str().is_some() => parsed,
        _ => return failed("SMTP_URL is not an smtp:// or smtps:// URL", "set SMTP_URL=smtp://host:port in .env"),
    };
    let host = parsed.host_str().unwrap_or_default().to_owned();
    let tls_param = parsed.query_pairs().any(|(key, _)| key == "tls");
    let port = parsed.port().unwrap_or(match (parsed.scheme(), tls_param) {
        ("smtps", _) => 465,
        (_, true) => 587,
        _ => 25,
    });
    let fix = "start the mail server or correct SMTP_URL in .env";
    let stream = match tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect((host.as_str(), port))).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => return failed(format!("cannot connect to {host}:{port}: {err}"), fix),
        Err(_) => return failed(format!("{host}:{port} did not accept a connection within 5 s"), fix),
    };
    if parsed.scheme() == "smtps" {
        return Outcome::Passed(format!("{host}:{port} accepts connections (its TLS greeting is not checked)"));
    }
    let mut banner = String::new();
    let mut reader = tokio::io::BufReader::new(stream);
    match tokio::time::timeout(TIMEOUT, reader.read_line(&mut banner)).await {
        Ok(Ok(_)) if banner.starts_with("220") => Outcome::Passed(format!("{host}:{port} greets: {}", banner.trim())),
        Ok(Ok(_)) => failed(format!("{host}:{port} is not an SMTP server (it said {:?})", banner.trim()), fix),
        Ok(Err(err)) => failed(format!("{host}:{port} closed the connection: {err}"), fix),
        Err(_) => failed(format!("{host}:{port} sent no SMTP greeting within 5 s"), fix),
    }
}

fn check_stripe_key(key: Option<&str>) -> Outcome {
    let fix = "set STRIPE_SECRET_KEY in .env to the secret key of the Stripe dashboard (Developers → API keys)";
    let Some(key) = key else {
        return failed("STRIPE_SECRET_KEY is not set: payments cannot reach Stripe", fix);
    };
    if key.starts_with("pk_") {
        return failed("STRIPE_SECRET_KEY holds a publishable key (pk_…), not a secret one", fix);
    }
    let mode = ["sk_test_", "rk_test_", "sk_live_", "rk_live_"].into_iter().find(|prefix| key.starts_with(prefix));
    match mode {
        Some(prefix) if key.len() > prefix.len() + 4 && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            let mode = if prefix.contains("test") { "test mode" } else { "live mode" };
            Outcome::Passed(format!("{prefix}… ({mode})"))
        }
        _ => failed("STRIPE_SECRET_KEY does not look like a Stripe secret key (sk_test_… or sk_live_…)", fix),
    }
}

async fn check_stripe_api(base: &str, key: &str) -> Outcome {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let base = base.trim_end_matches('/');
    let client = match reqwest::Client::builder().timeout(TIMEOUT * 2).build() {
        Ok(client) => client,
        Err(err) => return failed(format!("no HTTP client: {err}"), "report this as a bug"),
    };
    let fix_base = "correct STRIPE_API_BASE in .env (or remove it to use https://api.stripe.com)";
    match client.get(format!("{base}/v1/balance")).bearer_auth(key).send().await {
        Ok(response) => match response.status().as_u16() {
            401 => failed(
                format!("{base} refused the key (401)"),
                "copy the secret key of the Stripe dashboard (Developers → API keys) into STRIPE_SECRET_KEY",
            ),
            status @ 500.. => failed(format!("{base} answered {status}"), fix_base),
            status => Outcome::Passed(format!("{base} accepted the key ({status} to GET /v1/balance)")),
        },
        Err(err) => failed(format!("cannot reach {base}: {err}"), fix_base),
    }
}

fn check_webhook_secret(secret: Option<&str>) -> Outcome {
    match secret {
        Some(secret) if secret.starts_with("whsec_") => Outcome::Passed("STRIPE_WEBHOOK_SECRET is set".into()),
        Some(_) => failed(
            "STRIPE_WEBHOOK_SECRET does not look like a signing secret (whsec_…)",
            "copy the signing secret of the webhook endpoint (or of `stripe listen`) into STRIPE_WEBHOOK_SECRET",
        ),
        None => failed(
            "STRIPE_WEBHOOK_SECRET is not set: Stripe's events are refused, so no order is ever paid",
            "set STRIPE_WEBHOOK_SECRET to the endpoint's signing secret (`stripe listen` prints one for development)",
        ),
    }
}
