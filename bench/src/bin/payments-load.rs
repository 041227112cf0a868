//! Load tool for the payments benchmark (bench/payments.sh). Loopback only.
//!
//! Everything runs in this process: a test app (auth + payments, its job worker, no cron) on
//! a fresh database of the server named by `SAAS_TEST_DATABASE_URL` (PostgreSQL; SQLite only
//! with `--allow-sqlite`), and the fake Stripe it charges through.
//!
//! Webhooks, R runs (default 3) on fresh orders each: N orders (default 5,000, half `direct`
//! with a payee — 3 ledger postings when paid — half `escrow` — 1 posting and a hold) are
//! created through `PaymentsService::create_order` (32 at a time; each charges the fake
//! Stripe), then the fake Stripe makes one `payment_intent.succeeded` event per order (a new
//! event id each). C senders (default 32) sign each event when they send it and POST it to
//! `/api/v1/payments/webhooks/stripe/`; the clock runs from the first send until every event
//! is stored `processed` (polled every 50 ms). A run reports the rate the endpoint accepted
//! events at (with the POST latency) and the end-to-end processed rate, then checks that
//! every order is settled (direct) or held (escrow) and that the ledger sums to 0 in every
//! currency; anything else fails the tool. The median run (by processed events/s) is the
//! result. `--profile` adds, per run, PostgreSQL's counters per event (commits, rows written
//! per table, WAL) and a sampling of what the app's backends were doing (every 10 ms).
//!
//! Balance read: two user ledger accounts are created at the start; `Ledger::balance` of one
//! is timed 10,000 times in a row on the empty ledger, then again after 1,000,000 entries
//! between the two accounts have been inserted in one `INSERT … SELECT … FROM
//! generate_series` (PostgreSQL only; the accounts' balances are then set to match).
//!
//! Per-run lines are printed as they come; a Markdown fragment ends the output. The test
//! database's name is printed on stderr first (`database=…`), so a script can drop it if the
//! tool is killed (it is dropped at exit otherwise).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use clap::Parser;
use futures::{StreamExt, TryStreamExt, stream};
use serde::Deserialize;
use sqlx::{Connection, PgConnection};
use tokio::time::sleep;
use uuid::Uuid;

use saas_auth::AuthModule;
use saas_bench::{TokenPair, http_client, percentile_ms, register, round};
use saas_core::testing::{TEST_DATABASE_URL, TestApp, TestDatabase};
use saas_core::{Db, with_pool};
use saas_payments::service::CreateOrder;
use saas_payments::testing::{FakeStripe, stripe_signature};
use saas_payments::{Account, Ledger, Order, PaymentsModule, PaymentsService};

const WEBHOOK_PATH: &str = "/api/v1/payments/webhooks/stripe/";
const CURRENCY: &str = "usd";
const POLL: Duration = Duration::from_millis(50);
/// PostgreSQL flushes an idle backend's statistics within 10 s (PGSTAT_IDLE_INTERVAL).
const STATS_SETTLE: Duration = Duration::from_secs(11);

#[derive(Parser)]
#[command(name = "payments-load", about = "Webhook throughput and balance reads of saas-payments (bench/payments.sh).")]
struct Cli {
    /// Orders, so webhook events, per run.
    #[arg(long, default_value_t = 5000)]
    orders: usize,
    /// Concurrent webhook senders.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Runs, each on fresh orders; the median is the result.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Registered users the orders are spread over, as payers and payees (at least 2).
    #[arg(long, default_value_t = 8)]
    users: usize,
    /// Concurrent `create_order` calls while seeding a run's orders.
    #[arg(long, default_value_t = 32)]
    seed_concurrency: usize,
    /// Ledger entries inserted before the second series of balance reads.
    #[arg(long, default_value_t = 1_000_000)]
    ledger_entries: i64,
    /// Timed balance reads at each ledger size.
    #[arg(long, default_value_t = 10_000)]
    reads: usize,
    /// Longest wait for one run's events to be processed, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// An app configuration variable (repeatable), e.g. `--var JOB_CONCURRENCY=8`; it wins
    /// over the tool's JOB_CONCURRENCY=4 and JOB_POLL_INTERVAL_MS=500 (a server's defaults).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    /// Run on SQLite when SAAS_TEST_DATABASE_URL does not name PostgreSQL (not a headline
    /// figure; no 1,000,000-entry ledger).
    #[arg(long)]
    allow_sqlite: bool,
    /// Leave out the balance reads.
    #[arg(long)]
    skip_balance: bool,
    /// PostgreSQL: per-event counters and a sampling of the backends during each run.
    #[arg(long)]
    profile: bool,
    /// PostgreSQL, for experiments: `ALTER DATABASE … SET NAME = VALUE` on the test database
    /// before the app connects (repeatable), e.g. `synchronous_commit=off`.
    #[arg(long = "database-setting", value_name = "NAME=VALUE", value_parser = parse_var)]
    database_settings: Vec<(String, String)>,
    /// Leave the test database in place at exit (for inspection).
    #[arg(long)]
    keep_database: bool,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn parse_var(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads =
        cli.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("payments-load: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("payments-load: {err}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// set-up

/// The app and what the runs share.
struct Bench {
    app: TestApp,
    stripe: FakeStripe,
    service: PaymentsService,
    users: Vec<Uuid>,
    http: reqwest::Client,
    /// The test database's URL (for the profiler's and the seeder's own connections).
    url: String,
    /// Its name (the backends' process titles carry it).
    db_name: String,
    postgres: bool,
}

impl Bench {
    fn db(&self) -> &Db {
        self.app.context().db()
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    if cli.orders == 0 || cli.concurrency == 0 || cli.runs == 0 || cli.seed_concurrency == 0 || cli.reads == 0 {
        return Err("--orders, --concurrency, --runs, --seed-concurrency and --reads must be positive".into());
    }
    if cli.users < 2 {
        return Err("--users must be at least 2 (an escrow order's payee is not its payer)".into());
    }
    let server = std::env::var(TEST_DATABASE_URL).unwrap_or_default();
    let postgres = server.starts_with("postgres");
    if !postgres && !cli.allow_sqlite {
        return Err(format!(
            "{TEST_DATABASE_URL} must name a PostgreSQL server (postgres://…) for the headline figures; \
             got {server:?} (--allow-sqlite runs on SQLite anyway)"
        ));
    }
    if postgres {
        // A clear error instead of the harness's panic.
        let conn =
            PgConnection::connect(&server).await.map_err(|err| format!("{TEST_DATABASE_URL}={server}: {err}"))?;
        let _ = conn.close().await;
    }
    if cli.profile && !postgres {
        return Err("--profile reads PostgreSQL's statistics views; it needs PostgreSQL".into());
    }

    let db = TestDatabase::create().await;
    let url = db.url().to_owned();
    let name = url.rsplit('/').next().unwrap_or_default().split('?').next().unwrap_or_default().to_owned();
    eprintln!("payments-load: database={name}");
    let mut result = Ok(());
    if !cli.database_settings.is_empty() {
        if !postgres {
            return Err("--database-setting needs PostgreSQL".into());
        }
        result = database_settings(&url, &name, &cli.database_settings).await;
    }
    if result.is_ok() {
        result = measure(&cli, &db, url, postgres).await;
    }
    if cli.keep_database {
        eprintln!("payments-load: database {name} kept");
        std::mem::forget(db);
    } else {
        drop(db); // drops the PostgreSQL database
    }
    result
}

async fn database_settings(url: &str, name: &str, settings: &[(String, String)]) -> Result<(), String> {
    let plain = |text: &str| !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    let mut conn = PgConnection::connect(url).await.map_err(|err| format!("{url}: {err}"))?;
    for (setting, value) in settings {
        if !plain(setting) || !plain(value) {
            return Err(format!("--database-setting {setting}={value}: letters, digits, _ . - only"));
        }
        let sql = format!("ALTER DATABASE {name} SET {setting} = '{value}'");
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.map_err(|err| format!("{setting}: {err}"))?;
        eprintln!("payments-load: database setting {setting}={value}");
    }
    let _ = conn.close().await;
    Ok(())
}

async fn measure(cli: &Cli, db: &TestDatabase, url: String, postgres: bool) -> Result<(), String> {
    let stripe = FakeStripe::start().await;
    let mut builder = TestApp::builder()
        .module(AuthModule::default())
        .module(PaymentsModule::default())
        .var("AUTH_RATE_LIMIT_PER_MINUTE", "100000")
        .var("STRIPE_SECRET_KEY", FakeStripe::SECRET_KEY)
        .var("STRIPE_WEBHOOK_SECRET", FakeStripe::WEBHOOK_SECRET)
        .var("STRIPE_API_BASE", stripe.url())
        // A deployed server's job settings (the test harness polls every 50 ms).
        .var("JOB_CONCURRENCY", "4")
        .var("JOB_POLL_INTERVAL_MS", "500")
        // No cron: reconciliation would call Stripe for every order in the middle of a run.
        .background(true, false);
    for (name, value) in &cli.vars {
        builder = builder.var(name, value.clone());
    }
    let app = builder.start(db).await;
    let ctx = app.context();
    let service = PaymentsService::get(ctx).map_err(|err| err.to_string())?;
    let settings = Settings {
        job_store: ctx.jobs().store().backend_name(),
        job_concurrency: ctx.config().job_concurrency,
        job_poll_ms: ctx.config().job_poll_interval.as_millis() as u64,
        vars: cli
            .vars
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .chain(cli.database_settings.iter().map(|(name, value)| format!("PostgreSQL {name}={value}")))
            .collect(),
        database: if postgres {
            let version: String =
                with_pool!(ctx.db(), pool => sqlx::query_scalar("SHOW server_version").fetch_one(pool).await)
                    .map_err(|err| err.to_string())?;
            format!("PostgreSQL {version}")
        } else {
            "SQLite".to_owned()
        },
    };
    eprintln!(
        "payments-load: {}, job store {}, JOB_CONCURRENCY={}, JOB_POLL_INTERVAL_MS={}",
        settings.database, settings.job_store, settings.job_concurrency, settings.job_poll_ms
    );

    let http = http_client()?;
    let base = app.url("");
    let tag = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let (http_ref, base_ref, tag_ref) = (&http, &base, &tag);
    let users: Vec<TokenPair> = stream::iter(0..cli.users)
        .map(move |i| async move { register(http_ref, base_ref, &format!("payments-{tag_ref}-{i}@example.com")).await })
        .buffered(4)
        .try_collect()
        .await?;
    let users = users
        .iter()
        .map(|u| u.user.id.parse().map_err(|err| format!("a user id that is not a UUID: {err}")))
        .collect::<Result<Vec<Uuid>, String>>()?;
    let db_name = url.rsplit('/').next().unwrap_or_default().split('?').next().unwrap_or_default().to_owned();
    let bench = Bench { app, stripe, service, users, http, url, db_name, postgres };

    // Balance reads on the empty ledger: two accounts, no entries.
    let (rich, poor) = (Account::user(Uuid::new_v4(), CURRENCY), Account::user(Uuid::new_v4(), CURRENCY));
    let mut empty_read = None;
    if !cli.skip_balance {
        create_accounts(bench.db(), &[&rich, &poor]).await?;
        let timing = time_balance(&bench.service.ledger(), &rich, cli.reads).await?;
        println!("balance ledger_entries=0 {}", timing.line());
        empty_read = Some(timing);
    }

    let mut runs = Vec::with_capacity(cli.runs);
    for run in 1..=cli.runs {
        let report = webhook_run(&bench, cli, run).await?;
        println!("{}", report.line());
        if let Some(profile) = &report.profile {
            println!("{profile}");
        }
        runs.push(report);
    }

    let mut big_read = None;
    if !cli.skip_balance {
        if bench.postgres {
            let seeded = seed_ledger(&bench.url, &rich, &poor, cli.ledger_entries).await?;
            println!("{}", seeded.line());
            let ledger = bench.service.ledger();
            let balance = ledger.balance(&rich).await.map_err(|err| err.to_string())?;
            if balance != seeded.rich_balance {
                return Err(format!("seeded balance {balance}, expected {}", seeded.rich_balance));
            }
            check_totals(&ledger).await?;
            let entries = ledger.entry_count().await.map_err(|err| err.to_string())?;
            let timing = time_balance(&ledger, &rich, cli.reads).await?;
            println!("balance ledger_entries={entries} {}", timing.line());
            big_read = Some((entries, timing));
        } else {
            eprintln!("payments-load: the {}-entry ledger is seeded on PostgreSQL only", cli.ledger_entries);
        }
    }

    let Bench { app, stripe, .. } = bench;
    app.shutdown().await;
    drop(stripe);
    print_fragment(cli, &settings, &runs, empty_read.as_ref(), big_read.as_ref());
    Ok(())
}

struct Settings {
    job_store: &'static str,
    job_concurrency: usize,
    job_poll_ms: u64,
    vars: Vec<String>,
    database: String,
}

// ---------------------------------------------------------------------------------------------
// webhooks

struct RunReport {
    run: usize,
    orders: usize,
    direct: usize,
    escrow: usize,
    seed_per_s: f64,
    receive_s: f64,
    received_per_s: f64,
    post_p50_ms: f64,
    post_p99_ms: f64,
    processed_at_receive_end: i64,
    processed_s: f64,
    processed_per_s: f64,
    /// The rate once the endpoint had answered every event: the worker alone.
    drain_per_s: f64,
    cpu: CpuUse,
    profile: Option<String>,
}

impl RunReport {
    fn line(&self) -> String {
        format!(
            "run={} orders={} direct={} escrow={} seeded_per_s={:.0} receive_s={:.2} received_per_s={:.0} \
             post_p50_ms={:.2} post_p99_ms={:.2} processed_at_receive_end={} processed_s={:.2} processed_per_s={:.0} \
             drain_per_s={:.0} machine_busy_pct={:.0} tool_cpu_cores={:.2} postgres_cpu_cores={:.2} \
             cpu_ms_per_event={:.2} verified=ok",
            self.run,
            self.orders,
            self.direct,
            self.escrow,
            self.seed_per_s,
            self.receive_s,
            self.received_per_s,
            self.post_p50_ms,
            self.post_p99_ms,
            self.processed_at_receive_end,
            self.processed_s,
            self.processed_per_s,
            self.drain_per_s,
            self.cpu.machine_busy_pct,
            self.cpu.tool_cores,
            self.cpu.postgres_cores,
            self.cpu.cpu_ms / self.orders as f64
        )
    }
}

async fn webhook_run(bench: &Bench, cli: &Cli, run: usize) -> Result<RunReport, String> {
    let n = cli.orders;
    let reference = format!("bench-run-{run}");
    eprintln!("payments-load: run {run}: creating {n} orders");
    let seed_start = Instant::now();
    let orders = create_orders(bench, &reference, n, cli.seed_concurrency).await?;
    let seed_per_s = n as f64 / seed_start.elapsed().as_secs_f64();
    let escrow = orders.iter().filter(|o| o.strategy_type == "escrow").count();
    let direct = n - escrow;
    let events: Vec<String> = orders
        .iter()
        .map(|order| {
            let intent = order
                .stripe_payment_intent_id
                .as_deref()
                .ok_or_else(|| format!("order {} has no PaymentIntent", order.id))?;
            Ok(bench.stripe.succeed_payment_intent(intent).to_string())
        })
        .collect::<Result<_, String>>()?;
    let ledger = bench.service.ledger();
    let entries_before = ledger.entry_count().await.map_err(|err| err.to_string())?;
    // Every earlier event was received long before (orders were created since).
    let since = Utc::now() - chrono::Duration::seconds(1);
    let processed_before = processed_count(bench.db(), since).await?;
    if processed_before != 0 {
        return Err(format!("run {run}: {processed_before} events processed before the first send"));
    }
    let target = n as i64;

    let mut profiler = None;
    if cli.profile {
        sleep(STATS_SETTLE).await; // the seeding's statistics, out of the window
        profiler = Some(Profiler::start(&bench.url).await?);
    }
    eprintln!("payments-load: run {run}: sending {n} events from {} senders", cli.concurrency);
    let cpu_before = CpuSnapshot::now(&bench.db_name);
    let progress = Arc::new(AtomicI64::new(processed_before));
    let events = Arc::new(events);
    let next = Arc::new(AtomicUsize::new(0));
    let url: Arc<str> = bench.app.url(WEBHOOK_PATH).into();
    let t0 = Instant::now();
    let poller = {
        let db = bench.db().clone();
        let progress = progress.clone();
        let timeout = Duration::from_secs(cli.timeout);
        tokio::spawn(async move { wait_processed(db, since, target, progress, t0, timeout).await })
    };
    let senders: Vec<_> = (0..cli.concurrency)
        .map(|_| tokio::spawn(sender(bench.http.clone(), url.clone(), events.clone(), next.clone())))
        .collect();
    let mut sent = SendStats::default();
    let mut last_answer = t0;
    for task in senders {
        let mut stats = task.await.map_err(|err| format!("a sender failed: {err}"))?;
        sent.accepted += stats.accepted;
        sent.duplicates += stats.duplicates;
        sent.errors += stats.errors;
        if sent.first_error.is_none() {
            sent.first_error = stats.first_error.take();
        }
        sent.latencies_us.append(&mut stats.latencies_us);
        last_answer = last_answer.max(stats.finished.unwrap_or(t0));
    }
    let processed_at_receive_end = progress.load(Relaxed) - processed_before;
    if sent.errors > 0 || sent.duplicates > 0 {
        poller.abort();
        return Err(format!(
            "run {run}: {} of {n} events refused, {} answered as duplicates; first error: {}",
            sent.errors,
            sent.duplicates,
            sent.first_error.unwrap_or_default()
        ));
    }
    let waited = poller.await.map_err(|err| format!("the poller failed: {err}"))?;
    let cpu = cpu_before.and_then(|before| before.until_now(&bench.db_name)).unwrap_or_default();
    let (processed, polls) = match waited {
        Ok(done) => done,
        Err(err) => return Err(format!("run {run}: {err}; events by state: {}", event_states(bench.db()).await)),
    };
    let profile = match profiler {
        Some(profiler) => Some(profiler.finish(n, polls).await?),
        None => None,
    };

    verify_run(bench, &reference, direct, escrow, entries_before + 3 * direct as i64 + escrow as i64).await?;
    sent.latencies_us.sort_unstable();
    let receive_s = last_answer.duration_since(t0).as_secs_f64();
    let processed_s = processed.as_secs_f64();
    Ok(RunReport {
        run,
        orders: n,
        direct,
        escrow,
        seed_per_s,
        receive_s,
        received_per_s: n as f64 / receive_s,
        post_p50_ms: round(percentile_ms(&sent.latencies_us, 50.0), 2),
        post_p99_ms: round(percentile_ms(&sent.latencies_us, 99.0), 2),
        processed_at_receive_end,
        processed_s,
        processed_per_s: n as f64 / processed_s,
        drain_per_s: (n as i64 - processed_at_receive_end) as f64 / (processed_s - receive_s).max(1e-3),
        cpu,
        profile,
    })
}

/// `n` pending orders through `create_order`: even ones `direct` with a payee, odd ones
/// `escrow`; payers and payees taken round-robin from the users.
async fn create_orders(bench: &Bench, reference: &str, n: usize, concurrency: usize) -> Result<Vec<Order>, String> {
    let users = &bench.users;
    let service = &bench.service;
    stream::iter(0..n)
        .map(|i| {
            let payer = users[i % users.len()];
            let payee = users[(i + 1) % users.len()];
            let strategy = if i % 2 == 0 { "direct" } else { "escrow" };
            let input = CreateOrder {
                strategy_type: strategy.to_owned(),
                amount_cents: 1_000 + (i % 50) as i64 * 100,
                currency: Some(CURRENCY.to_owned()),
                payee_id: Some(payee),
                description: Some(format!("Benchmark order {i}")),
                reference_type: Some(reference.to_owned()),
                reference_id: Some(i.to_string()),
                metadata: None,
            };
            async move { service.create_order(payer, input).await.map_err(|err| format!("create_order #{i}: {err}")) }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await
}

#[derive(Default)]
struct SendStats {
    accepted: u64,
    duplicates: u64,
    errors: u64,
    first_error: Option<String>,
    latencies_us: Vec<u32>,
    finished: Option<Instant>,
}

#[derive(Deserialize)]
struct Received {
    duplicate: bool,
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Sends events until none is left, each signed just before it is sent.
async fn sender(http: reqwest::Client, url: Arc<str>, events: Arc<Vec<String>>, next: Arc<AtomicUsize>) -> SendStats {
    let mut stats = SendStats::default();
    while let Some(payload) = events.get(next.fetch_add(1, Relaxed)) {
        let signature = stripe_signature(FakeStripe::WEBHOOK_SECRET, payload, unix_now());
        let started = Instant::now();
        let answer = async {
            let response = http
                .post(&*url)
                .header("content-type", "application/json")
                .header("stripe-signature", signature)
                .body(payload.clone())
                .send()
                .await
                .map_err(|err| err.to_string())?;
            let status = response.status();
            let body = response.text().await.map_err(|err| err.to_string())?;
            if status != reqwest::StatusCode::OK {
                return Err(format!("HTTP {status}: {}", body.chars().take(300).collect::<String>()));
            }
            serde_json::from_str::<Received>(&body).map_err(|err| format!("unexpected answer ({err}): {body}"))
        }
        .await;
        stats.latencies_us.push(started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        match answer {
            Ok(Received { duplicate: false }) => stats.accepted += 1,
            Ok(Received { duplicate: true }) => stats.duplicates += 1,
            Err(err) => {
                stats.errors += 1;
                stats.first_error.get_or_insert(err);
            }
        }
    }
    stats.finished = Some(Instant::now());
    stats
}

/// Events received since `since` and stored `processed` (the range keeps the count's cost to
/// the run's own events).
async fn processed_count(db: &Db, since: DateTime<Utc>) -> Result<i64, String> {
    with_pool!(db, pool => sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM payment_webhook_events WHERE state = 'processed' AND received_at >= $1")
        .bind(since).fetch_one(pool).await)
    .map_err(|err| format!("counting processed events: {err}"))
}

/// Polls every 50 ms until `target` events are processed; the time from `t0`.
/// Also how many times it counted (each a transaction the profile leaves out).
async fn wait_processed(
    db: Db,
    since: DateTime<Utc>,
    target: i64,
    progress: Arc<AtomicI64>,
    t0: Instant,
    timeout: Duration,
) -> Result<(Duration, i64), String> {
    let mut polls = 0;
    loop {
        let processed = processed_count(&db, since).await?;
        polls += 1;
        progress.store(processed, Relaxed);
        if processed >= target {
            return Ok((t0.elapsed(), polls));
        }
        if t0.elapsed() > timeout {
            return Err(format!("{processed} of {target} events processed after {} s", timeout.as_secs()));
        }
        sleep(POLL).await;
    }
}

async fn event_states(db: &Db) -> String {
    let rows: Result<Vec<(String, i64)>, sqlx::Error> = with_pool!(db, pool => sqlx::query_as(
        "SELECT state, COUNT(*) FROM payment_webhook_events GROUP BY state ORDER BY state")
        .fetch_all(pool).await);
    match rows {
        Ok(rows) => rows.iter().map(|(state, count)| format!("{state}={count}")).collect::<Vec<_>>().join(" "),
        Err(err) => format!("(unreadable: {err})"),
    }
}

/// Every order of the run settled (direct) or held (escrow), no event left failed or
/// pending, the expected number of new entries, and a ledger summing to 0 per currency.
async fn verify_run(bench: &Bench, reference: &str, direct: usize, escrow: usize, entries: i64) -> Result<(), String> {
    let rows: Vec<(String, String, i64)> = with_pool!(bench.db(), pool => sqlx::query_as(
        "SELECT strategy_type, state, COUNT(*) FROM payment_orders WHERE reference_type = $1 \
         GROUP BY strategy_type, state ORDER BY strategy_type, state")
        .bind(reference).fetch_all(pool).await)
    .map_err(|err| err.to_string())?;
    let expected = vec![
        ("direct".to_owned(), "settled".to_owned(), direct as i64),
        ("escrow".to_owned(), "held".to_owned(), escrow as i64),
    ];
    let found: Vec<_> = rows.into_iter().filter(|row| row.2 > 0).collect();
    if found != expected {
        return Err(format!("{reference}: orders by strategy and state {found:?}, expected {expected:?}"));
    }
    let states = event_states(bench.db()).await;
    if states.contains("failed=") || states.contains("pending=") {
        return Err(format!("{reference}: webhook events left unprocessed: {states}"));
    }
    let ledger = bench.service.ledger();
    let count = ledger.entry_count().await.map_err(|err| err.to_string())?;
    if count != entries {
        return Err(format!("{reference}: {count} ledger entries, expected {entries}"));
    }
    check_totals(&ledger).await
}

async fn check_totals(ledger: &Ledger) -> Result<(), String> {
    let totals = ledger.totals().await.map_err(|err| err.to_string())?;
    if totals.iter().any(|(_, sum)| *sum != 0) {
        return Err(format!("the ledger does not balance: totals by currency {totals:?}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// CPU

/// `/proc/stat` busy and total jiffies of the machine, this process's CPU ticks and those of
/// the PostgreSQL backends of the test database (100 ticks a second).
struct CpuSnapshot {
    at: Instant,
    busy: u64,
    total: u64,
    process: u64,
    postgres: u64,
}

/// What a run used.
#[derive(Clone, Copy, Default)]
struct CpuUse {
    /// The machine's busy share, every process included (the machine is shared).
    machine_busy_pct: f64,
    /// This process: the app, its worker, the fake Stripe and the senders.
    tool_cores: f64,
    /// The backends of the test database.
    postgres_cores: f64,
    /// Both, in CPU milliseconds.
    cpu_ms: f64,
}

/// utime + stime of a `/proc/<pid>/stat` text.
fn stat_ticks(stat: &str) -> Option<u64> {
    // After "pid (name)": state, ppid, pgrp, session, tty_nr, tpgid, flags, minflt, cminflt,
    // majflt, cmajflt, utime, stime, …
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The CPU ticks of the backends of `database` (titled "postgres: …: user database host …");
/// 0 for no database.
fn postgres_ticks(database: &str) -> u64 {
    if database.is_empty() {
        return 0;
    }
    let needle = format!(" {database} ");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|entry| {
            let title = std::fs::read(entry.path().join("cmdline")).ok()?;
            let title = String::from_utf8_lossy(&title);
            if !title.starts_with("postgres:") || !title.contains(&needle) {
                return None;
            }
            stat_ticks(&std::fs::read_to_string(entry.path().join("stat")).ok()?)
        })
        .sum()
}

impl CpuSnapshot {
    fn now(database: &str) -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> =
            stat.lines().next()?.split_whitespace().skip(1).filter_map(|field| field.parse().ok()).collect();
        let total: u64 = fields.iter().take(8).sum();
        let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
        let process = stat_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
        let postgres = postgres_ticks(database);
        Some(Self { at: Instant::now(), busy: total - idle, total, process, postgres })
    }

    fn until_now(self, database: &str) -> Option<CpuUse> {
        let now = Self::now(database)?;
        let seconds = now.at.duration_since(self.at).as_secs_f64().max(1e-3);
        let process = now.process.saturating_sub(self.process) as f64 / 100.0;
        let postgres = now.postgres.saturating_sub(self.postgres) as f64 / 100.0;
        Some(CpuUse {
            machine_busy_pct: (now.busy - self.busy) as f64 / (now.total - self.total).max(1) as f64 * 100.0,
            tool_cores: process / seconds,
            postgres_cores: postgres / seconds,
            cpu_ms: (process + postgres) * 1000.0,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// profile (PostgreSQL)

/// PostgreSQL's counters before a run, and a task sampling the app's backends.
struct Profiler {
    conn: PgConnection,
    before: Counters,
    stop: Arc<AtomicBool>,
    sampler: tokio::task::JoinHandle<Result<Samples, String>>,
}

#[derive(Default)]
struct Counters {
    commits: i64,
    rollbacks: i64,
    /// (table, inserted, updated, of which HOT, deleted, index scans, sequential scans)
    tables: HashMap<String, [i64; 6]>,
    /// Cluster-wide: WAL records, bytes, syncs.
    wal: [i64; 3],
}

#[derive(Default)]
struct Samples {
    count: u64,
    by_state: HashMap<String, u64>,
    lock_waits: HashMap<String, u64>,
    /// (what the backend is doing, the statement) of active backends.
    statements: HashMap<String, u64>,
    /// Queries this profiler ran on the database (they count as commits).
    queries: i64,
}

async fn counters(conn: &mut PgConnection) -> Result<Counters, String> {
    let (commits, rollbacks): (i64, i64) =
        sqlx::query_as("SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()")
            .fetch_one(&mut *conn)
            .await
            .map_err(|err| format!("pg_stat_database: {err}"))?;
    let rows: Vec<(String, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT schemaname || '.' || relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, \
         COALESCE(idx_scan, 0), seq_scan FROM pg_stat_user_tables \
         WHERE relname LIKE 'payment%' OR schemaname = 'apalis'",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(|err| format!("pg_stat_user_tables: {err}"))?;
    let wal: (i64, i64, i64) = sqlx::query_as("SELECT wal_records, wal_bytes::bigint, wal_sync FROM pg_stat_wal")
        .fetch_one(&mut *conn)
        .await
        .map_err(|err| format!("pg_stat_wal: {err}"))?;
    let tables = rows.into_iter().map(|r| (r.0, [r.1, r.2, r.3, r.4, r.5, r.6])).collect();
    Ok(Counters { commits, rollbacks, tables, wal: [wal.0, wal.1, wal.2] })
}

/// state, wait_event_type, wait_event, the query's start.
type ActivityRow = (Option<String>, Option<String>, Option<String>, Option<String>);

const ACTIVITY: &str = "SELECT state, wait_event_type, wait_event, \
     left(regexp_replace(query, '\\s+', ' ', 'g'), 90) FROM pg_stat_activity \
     WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' \
     AND state <> 'idle'";

async fn sample(url: String, stop: Arc<AtomicBool>) -> Result<Samples, String> {
    let mut conn = PgConnection::connect(&url).await.map_err(|err| format!("profiler: {err}"))?;
    let mut samples = Samples::default();
    while !stop.load(Relaxed) {
        let rows: Vec<ActivityRow> =
            sqlx::query_as(ACTIVITY).fetch_all(&mut conn).await.map_err(|err| format!("pg_stat_activity: {err}"))?;
        samples.count += 1;
        samples.queries += 1;
        for (state, wait_type, wait, query) in rows {
            let state = state.unwrap_or_default();
            if state == "active" {
                let doing = wait.clone().unwrap_or_else(|| "CPU".to_owned());
                let key = format!("{doing:<16} {}", query.clone().unwrap_or_default());
                *samples.statements.entry(key).or_default() += 1;
            }
            let key = match (state.as_str(), wait_type, wait) {
                ("active", None, _) => "active, on CPU".to_owned(),
                ("active", Some(kind), event) => {
                    if kind == "Lock" {
                        *samples.lock_waits.entry(query.unwrap_or_default()).or_default() += 1;
                    }
                    format!("active, waiting on {kind}:{}", event.unwrap_or_default())
                }
                ("idle in transaction", _, _) => "idle in transaction (waiting for the app)".to_owned(),
                (other, _, _) => other.to_owned(),
            };
            *samples.by_state.entry(key).or_default() += 1;
        }
        sleep(Duration::from_millis(10)).await;
    }
    let _ = conn.close().await;
    Ok(samples)
}

impl Profiler {
    async fn start(url: &str) -> Result<Self, String> {
        let mut conn = PgConnection::connect(url).await.map_err(|err| format!("profiler: {err}"))?;
        let before = counters(&mut conn).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = tokio::spawn(sample(url.to_owned(), stop.clone()));
        Ok(Self { conn, before, stop, sampler })
    }

    /// The counters per event and the sampling, as text.
    async fn finish(mut self, events: usize, other_queries: i64) -> Result<String, String> {
        self.stop.store(true, Relaxed);
        let samples = self.sampler.await.map_err(|err| format!("the sampler failed: {err}"))??;
        sleep(STATS_SETTLE).await;
        let after = counters(&mut self.conn).await?;
        let _ = self.conn.close().await;
        let per = |value: i64| value as f64 / events as f64;
        // Reads are transactions too: the profiler's (three counter reads, the samples) and the
        // tool's polls for the processed count.
        let commits = after.commits - self.before.commits - samples.queries - 3 - other_queries;
        let mut out = format!(
            "profile: per event: commits={:.2} rollbacks={:.2} | cluster-wide (other databases included): \
             wal_records={:.1} wal_kb={:.2} wal_syncs={:.2}",
            per(commits),
            per(after.rollbacks - self.before.rollbacks),
            per(after.wal[0] - self.before.wal[0]),
            per(after.wal[1] - self.before.wal[1]) / 1024.0,
            per(after.wal[2] - self.before.wal[2]),
        );
        let mut tables: Vec<_> = after.tables.iter().collect();
        tables.sort_by(|a, b| a.0.cmp(b.0));
        out.push_str("\nprofile: rows per event (inserted/updated[HOT]/deleted, index/seq scans):");
        for (table, now) in tables {
            let was = self.before.tables.get(table).copied().unwrap_or_default();
            let d: Vec<i64> = now.iter().zip(was.iter()).map(|(a, b)| a - b).collect();
            if d.iter().all(|v| *v == 0) {
                continue;
            }
            out.push_str(&format!(
                "\n  {table}: ins={:.2} upd={:.2}[{:.2}] del={:.2} idx_scan={:.2} seq_scan={:.2}",
                per(d[0]),
                per(d[1]),
                per(d[2]),
                per(d[3]),
                per(d[4]),
                per(d[5])
            ));
        }
        let n = samples.count.max(1) as f64;
        let mut states: Vec<_> = samples.by_state.into_iter().collect();
        states.sort_by_key(|state| std::cmp::Reverse(state.1));
        out.push_str(&format!("\nprofile: app backends not idle, mean over {} samples (10 ms apart):", samples.count));
        for (state, count) in states {
            out.push_str(&format!("\n  {:5.2}  {state}", count as f64 / n));
        }
        let mut statements: Vec<_> = samples.statements.into_iter().collect();
        statements.sort_by_key(|statement| std::cmp::Reverse(statement.1));
        out.push_str("\nprofile: active statements (mean backends, wait event or CPU):");
        for (statement, count) in statements.into_iter().take(10) {
            out.push_str(&format!("\n  {:5.2}  {statement}", count as f64 / n));
        }
        let mut waits: Vec<_> = samples.lock_waits.into_iter().collect();
        waits.sort_by_key(|wait| std::cmp::Reverse(wait.1));
        if !waits.is_empty() {
            out.push_str("\nprofile: lock waits by statement (mean backends):");
            for (query, count) in waits.into_iter().take(5) {
                out.push_str(&format!("\n  {:5.2}  {query}", count as f64 / n));
            }
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// balance reads

async fn create_accounts(db: &Db, accounts: &[&Account]) -> Result<(), String> {
    let now = chrono::Utc::now();
    for account in accounts {
        with_pool!(db, pool => sqlx::query(
            "INSERT INTO payments_ledger_accounts (account_key, account_type, user_id, currency, balance_cents, \
             may_go_negative, created_at, updated_at) VALUES ($1, $2, $3, $4, 0, $5, $6, $6)")
            .bind(account.key()).bind(account.kind.as_str()).bind(account.user_id).bind(&account.currency)
            .bind(account.may_go_negative()).bind(now)
            .execute(pool).await.map(|_| ()))
        .map_err(|err| format!("creating account {}: {err}", account.key()))?;
    }
    Ok(())
}

struct Timing {
    reads: usize,
    /// The machine's busy share during the reads (it is shared).
    machine_busy_pct: f64,
    p50_us: f64,
    p99_us: f64,
    mean_us: f64,
    max_us: f64,
}

impl Timing {
    fn line(&self) -> String {
        format!(
            "reads={} p50_us={:.1} p99_us={:.1} mean_us={:.1} max_us={:.1} machine_busy_pct={:.0}",
            self.reads, self.p50_us, self.p99_us, self.mean_us, self.max_us, self.machine_busy_pct
        )
    }
}

/// Nearest-rank percentile of sorted nanoseconds, in microseconds.
fn percentile_us(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// `reads` sequential `Ledger::balance` calls (after 200 untimed ones).
async fn time_balance(ledger: &Ledger, account: &Account, reads: usize) -> Result<Timing, String> {
    for _ in 0..200 {
        ledger.balance(account).await.map_err(|err| err.to_string())?;
    }
    let mut nanos = Vec::with_capacity(reads);
    let cpu = CpuSnapshot::now("");
    for _ in 0..reads {
        let started = Instant::now();
        ledger.balance(account).await.map_err(|err| err.to_string())?;
        nanos.push(started.elapsed().as_nanos() as u64);
    }
    let machine_busy_pct = cpu.and_then(|cpu| cpu.until_now("")).map_or(0.0, |cpu| cpu.machine_busy_pct);
    nanos.sort_unstable();
    let mean = nanos.iter().sum::<u64>() as f64 / nanos.len() as f64 / 1000.0;
    Ok(Timing {
        reads,
        machine_busy_pct,
        p50_us: percentile_us(&nanos, 50.0),
        p99_us: percentile_us(&nanos, 99.0),
        mean_us: mean,
        max_us: nanos.last().map_or(0.0, |&ns| ns as f64 / 1000.0),
    })
}

/// Entries g = 1…N between the two accounts ($1 = rich, $2 = poor): every fourth one rich →
/// poor, the others poor → rich, amounts 1–50 cents; ids ordered (version-7 shaped, as the
/// app's are).
const SEED_ENTRIES: &str = "INSERT INTO payments_ledger_entries \
     (id, idempotency_key, debit_account, credit_account, amount_cents, currency, description, created_at) \
     SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'bench-seed:' || g, \
            CASE WHEN g % 4 = 0 THEN $1 ELSE $2 END, CASE WHEN g % 4 = 0 THEN $2 ELSE $1 END, \
            g % 50 + 1, $4, 'Seeded entry', now() - ($3 - g) * interval '1 millisecond' \
     FROM generate_series(1, $3::bigint) AS g";

/// The two accounts' balances from their entries (no other entry touches them).
const SEED_BALANCES: &str = "UPDATE payments_ledger_accounts AS account \
     SET balance_cents = moved.balance, updated_at = now() \
     FROM (SELECT key, CAST(SUM(delta) AS BIGINT) AS balance FROM ( \
             SELECT credit_account AS key, amount_cents AS delta FROM payments_ledger_entries \
             WHERE credit_account IN ($1, $2) \
             UNION ALL \
             SELECT debit_account, -amount_cents FROM payments_ledger_entries WHERE debit_account IN ($1, $2) \
           ) AS entries GROUP BY key) AS moved \
     WHERE account.account_key = moved.key";

struct Seeded {
    inserted: u64,
    insert_s: f64,
    total_s: f64,
    rich_balance: i64,
}

impl Seeded {
    fn line(&self) -> String {
        format!(
            "seed inserted={} insert_s={:.1} total_s={:.1} balance_cents={}",
            self.inserted, self.insert_s, self.total_s, self.rich_balance
        )
    }
}

async fn seed_ledger(url: &str, rich: &Account, poor: &Account, total: i64) -> Result<Seeded, String> {
    if total <= 0 {
        return Err("--ledger-entries must be positive".into());
    }
    eprintln!("payments-load: inserting {total} ledger entries");
    let started = Instant::now();
    let mut conn = PgConnection::connect(url).await.map_err(|err| format!("seeding: {err}"))?;
    sqlx::query("SET synchronous_commit = off").execute(&mut conn).await.map_err(|err| err.to_string())?;
    let inserted = sqlx::query(SEED_ENTRIES)
        .bind(rich.key())
        .bind(poor.key())
        .bind(total)
        .bind(CURRENCY)
        .execute(&mut conn)
        .await
        .map_err(|err| format!("inserting entries: {err}"))?
        .rows_affected();
    let insert_s = started.elapsed().as_secs_f64();
    sqlx::query(SEED_BALANCES)
        .bind(rich.key())
        .bind(poor.key())
        .execute(&mut conn)
        .await
        .map_err(|err| format!("setting the balances: {err}"))?;
    // Vacuumed now rather than by autovacuum in the middle of the timed reads.
    for table in ["VACUUM (ANALYZE) payments_ledger_entries", "VACUUM (ANALYZE) payments_ledger_accounts"] {
        sqlx::raw_sql(table).execute(&mut conn).await.map_err(|err| format!("{table}: {err}"))?;
    }
    let _ = conn.close().await;
    let rich_balance = (1..=total).map(|g| if g % 4 == 0 { -(g % 50 + 1) } else { g % 50 + 1 }).sum();
    Ok(Seeded { inserted, insert_s, total_s: started.elapsed().as_secs_f64(), rich_balance })
}

// ---------------------------------------------------------------------------------------------
// report

/// `1234567.8` → `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

fn print_fragment(
    cli: &Cli,
    settings: &Settings,
    runs: &[RunReport],
    empty: Option<&Timing>,
    big: Option<&(i64, Timing)>,
) {
    let mut sorted: Vec<&RunReport> = runs.iter().collect();
    sorted.sort_by(|a, b| a.processed_per_s.total_cmp(&b.processed_per_s));
    let Some(median) = sorted.get(sorted.len() / 2) else {
        return;
    };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let all: Vec<String> = runs.iter().map(|r| thousands(r.processed_per_s)).collect();
    let vars = if settings.vars.is_empty() { String::new() } else { format!(", {}", settings.vars.join(", ")) };
    println!();
    println!("### Payments — payments-load, {}", chrono::Utc::now().format("%Y-%m-%d"));
    println!();
    println!(
        "{cores} cores ({}), {}; job store {}, JOB_CONCURRENCY={}, JOB_POLL_INTERVAL_MS={}{vars}; \
         {} orders per run ({} direct with a payee: 3 postings; {} escrow: 1 posting and a hold), \
         {} concurrent senders, {} runs; the app, its worker, the fake Stripe and the senders in one process.",
        cpu_model(),
        settings.database,
        settings.job_store,
        settings.job_concurrency,
        settings.job_poll_ms,
        thousands(median.orders as f64),
        thousands(median.direct as f64),
        thousands(median.escrow as f64),
        cli.concurrency,
        runs.len(),
    );
    println!();
    println!("| measure | result | target |");
    println!("|---|---|---|");
    println!(
        "| signed `payment_intent.succeeded` webhooks processed end to end, events/s (median run) | **{}** (runs: {}) | ≥ 500 |",
        thousands(median.processed_per_s),
        all.join(", ")
    );
    println!(
        "| accepted by the endpoint, events/s (same run) | {}; POST p50 {:.1} ms, p99 {:.1} ms; {} of {} processed when the last answer came | |",
        thousands(median.received_per_s),
        median.post_p50_ms,
        median.post_p99_ms,
        thousands(median.processed_at_receive_end as f64),
        thousands(median.orders as f64),
    );
    println!(
        "| processed once every event had been answered (the worker alone), events/s (same run) | {} | |",
        thousands(median.drain_per_s)
    );
    println!(
        "| CPU per event: app + worker + fake Stripe + senders (one process), and the test database's \
         PostgreSQL backends (same run) | {:.2} ms ({:.2} + {:.2} cores; machine {:.0} % busy, other tenants included) | |",
        median.cpu.cpu_ms / median.orders as f64,
        median.cpu.tool_cores,
        median.cpu.postgres_cores,
        median.cpu.machine_busy_pct
    );
    println!("| order creation through `create_order` (seeding), orders/s | {} | |", thousands(median.seed_per_s));
    if let Some(empty) = empty {
        println!(
            "| `Ledger::balance`, empty ledger, {} sequential reads | p50 {:.0} µs, p99 {:.0} µs (machine {:.0} % busy) | |",
            thousands(empty.reads as f64),
            empty.p50_us,
            empty.p99_us,
            empty.machine_busy_pct
        );
    }
    if let Some((entries, timing)) = big {
        println!(
            "| `Ledger::balance`, {} ledger entries, {} sequential reads | **p50 {:.0} µs, p99 {:.0} µs** (machine {:.0} % busy) | < 1 ms |",
            thousands(*entries as f64),
            thousands(timing.reads as f64),
            timing.p50_us,
            timing.p99_us,
            timing.machine_busy_pct
        );
        if let Some(empty) = empty {
            println!(
                "| balance read, large / empty ledger (p50) | {:.2}× | ≈ 1× |",
                timing.p50_us / empty.p50_us.max(1e-3)
            );
        }
    }
}
