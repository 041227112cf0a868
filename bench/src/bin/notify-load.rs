//! Load and seeding tool for the notifications benchmark (bench/notify.sh). Loopback use only.
//!
//! `notify-load throughput` measures `NotifyService::notify` end to end on PostgreSQL + Redis:
//! it registers K users on a running server, opens each user's `ws/notifications/` socket
//! (waiting for its first `unread_count` frame), builds its own `AppContext` on the server's
//! DATABASE_URL / REDIS_URL / REDIS_PREFIX, and has C tasks call
//! `notify(user, "new_message", {"sender_name": "bench", "preview": "<send-nanos>|<call>"})`
//! round-robin over the users for S seconds (closed loop: each task waits for its call to
//! return). A call is delivered when its `notification.new` frame reaches the user's socket
//! through Redis pub/sub and the server; the tool reports calls/s, deliveries/s, losses and
//! send-to-receive latency (one line, or `--json`), waiting up to 5 s after the window.
//!
//! `notify-load seed` fills `notify_notifications` with generated rows in one
//! `INSERT … SELECT … FROM generate_series` (PostgreSQL only): `--user-rows` unread ones for the
//! benchmark user, the rest spread over `--recipients` pseudo-random recipients (a quarter of
//! them unread); then sets every seeded recipient's `notify_unread_counts` row to its exact
//! unread count and runs `ANALYZE`.

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use futures::{SinkExt, StreamExt, stream};
use serde::{Deserialize, Serialize};
use sqlx::Connection;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant as TokioInstant, sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_with_config};
use uuid::Uuid;

use saas_bench::{TokenPair, http_base, http_client, percentile_ms, register, round, ws_base};
use saas_core::{AppContext, Config};
use saas_notify::{NotifyModule, NotifyService};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const TYPE_KEY: &str = "new_message";

#[derive(Parser)]
#[command(name = "notify-load", about = "Load and seeding tool for bench/notify.sh (notifications).")]
struct Cli {
    /// Tokio worker threads (default: one per core).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// C tasks calling `notify` for S seconds; K users' sockets count the frames.
    Throughput(ThroughputArgs),
    /// Inserts generated notifications (PostgreSQL) and fixes the unread counters.
    Seed(SeedArgs),
}

#[derive(Args)]
struct ThroughputArgs {
    /// Server base URL (http://host:port) whose sockets receive the frames.
    #[arg(long)]
    node: String,
    /// The server's DATABASE_URL.
    #[arg(long)]
    database_url: String,
    /// The server's REDIS_URL.
    #[arg(long)]
    redis_url: String,
    /// The server's REDIS_PREFIX (the frames are published under it).
    #[arg(long)]
    redis_prefix: String,
    /// Recipients (registered users, one socket each).
    #[arg(long, default_value_t = 50)]
    users: usize,
    /// Concurrent `notify` callers.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Length of the calling window.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Print the result as one JSON object instead of key=value.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SeedArgs {
    /// postgres://… of the server's database.
    #[arg(long)]
    database_url: String,
    /// The benchmark user (gets `--user-rows` unread notifications).
    #[arg(long)]
    user: Uuid,
    /// Rows to insert in all.
    #[arg(long, default_value_t = 1_000_000)]
    total: i64,
    /// Of which for `--user`, all unread.
    #[arg(long, default_value_t = 100_000)]
    user_rows: i64,
    /// Other recipients the remaining rows are spread over.
    #[arg(long, default_value_t = 10_000)]
    recipients: i64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads =
        cli.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("notify-load: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Throughput(args) => throughput(args).await,
            Command::Seed(args) => seed(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("notify-load: {err}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP set-up and sockets

/// Frames of `ws/notifications/`: only the fields we need, borrowed from the text.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a str>,
    #[serde(borrow, default)]
    notification: Option<Body<'a>>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    body: Option<&'a str>,
}

/// Connects a user's socket and waits for its first frame (`unread_count`).
async fn open_socket(url: String) -> Result<Ws, String> {
    let redacted = url.split('?').next().unwrap_or(&url).to_owned();
    let (mut ws, _) = connect_async_with_config(&url, None, true).await.map_err(|err| format!("{redacted}: {err}"))?;
    let first = timeout(Duration::from_secs(10), ws.next()).await;
    match first {
        Ok(Some(Ok(Message::Text(text)))) => match serde_json::from_str::<Frame>(text.as_str()) {
            Ok(Frame { kind: Some("unread_count"), .. }) => Ok(ws),
            _ => Err(format!("{redacted}: unexpected first frame {}", text.as_str())),
        },
        Ok(other) => Err(format!("{redacted}: no first frame ({other:?})")),
        Err(_) => Err(format!("{redacted}: no first frame within 10 s")),
    }
}

// ---------------------------------------------------------------------------------------------
// throughput

struct Shared {
    /// The clock the send times are written against (one process, so one clock).
    base: Instant,
    delivered: AtomicU64,
}

impl Shared {
    fn nanos(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

#[derive(Default)]
struct SocketStats {
    delivered: u64,
    duplicates: u64,
    count_frames: u64,
    other_frames: u64,
    disconnected: bool,
    latencies_us: Vec<u32>,
}

/// `"<nanos>|<call>"` → (nanos, call).
fn parse_preview(text: &str) -> Option<(u64, u64)> {
    let (nanos, call) = text.split_once('|')?;
    Some((nanos.parse().ok()?, call.parse().ok()?))
}

async fn socket_task(mut ws: Ws, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) -> SocketStats {
    let mut stats = SocketStats::default();
    let mut seen = HashSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let Ok(frame) = serde_json::from_str::<Frame>(text.as_str()) else {
                        stats.other_frames += 1;
                        continue;
                    };
                    match (frame.kind, frame.notification.and_then(|n| n.body).and_then(parse_preview)) {
                        (Some("notification.new"), Some((sent_ns, call))) => {
                            if !seen.insert(call) {
                                stats.duplicates += 1;
                                continue;
                            }
                            let micros = shared.nanos().saturating_sub(sent_ns) / 1000;
                            stats.latencies_us.push(micros.min(u64::from(u32::MAX)) as u32);
                            stats.delivered += 1;
                            shared.delivered.fetch_add(1, Relaxed);
                        }
                        (Some("unread_count"), _) => stats.count_frames += 1,
                        _ => stats.other_frames += 1,
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    stats.disconnected = true;
                    break;
                }
                Some(Ok(_)) => {} // ping (answered by tungstenite), pong, binary
            },
        }
    }
    if !stats.disconnected {
        let _ = ws.send(Message::Close(None)).await;
    }
    stats
}

#[derive(Default)]
struct CallerStats {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    call_us: Vec<u32>,
}

async fn caller_task(
    service: NotifyService,
    users: Arc<Vec<Uuid>>,
    next: Arc<AtomicUsize>,
    shared: Arc<Shared>,
    start: TokioInstant,
    end: TokioInstant,
) -> CallerStats {
    let mut stats = CallerStats::default();
    sleep_until(start).await;
    while TokioInstant::now() < end {
        let call = next.fetch_add(1, Relaxed);
        let user = users[call % users.len()];
        let t0 = Instant::now();
        let preview = format!("{}|{call}", shared.nanos());
        let result =
            service.notify(user, TYPE_KEY, serde_json::json!({"sender_name": "bench", "preview": preview})).await;
        stats.call_us.push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        match result {
            Ok(Some(_)) => stats.ok += 1,
            Ok(None) => {
                stats.errors += 1;
                stats.first_error.get_or_insert_with(|| "no inbox entry stored (in-app switched off?)".into());
            }
            Err(err) => {
                stats.errors += 1;
                stats.first_error.get_or_insert_with(|| err.to_string());
            }
        }
    }
    stats
}

#[derive(Serialize)]
struct ThroughputReport {
    users: usize,
    concurrency: usize,
    seconds: u64,
    calls: u64,
    calls_per_s: f64,
    errors: u64,
    delivered: u64,
    delivered_per_s: f64,
    lost: u64,
    duplicates: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    call_p50_ms: f64,
    call_p99_ms: f64,
    count_frames: u64,
    disconnects: usize,
}

async fn throughput(args: ThroughputArgs) -> Result<(), String> {
    if args.users == 0 || args.concurrency == 0 || args.seconds == 0 {
        return Err("--users, --concurrency and --seconds must be positive".into());
    }
    // The notifying side: a context of our own on the server's database and Redis.
    let config = Config::from_vars(vec![
        ("DEBUG", "true"),
        ("SECRET_KEY", "notify-load-not-used-for-signing"),
        ("DATABASE_URL", args.database_url.as_str()),
        ("REDIS_URL", args.redis_url.as_str()),
        ("REDIS_PREFIX", args.redis_prefix.as_str()),
    ])
    .map_err(|err| format!("configuration: {err}"))?;
    let notify_module = NotifyModule::default();
    let modules: [&dyn saas_core::Module; 1] = [&notify_module];
    let ctx = AppContext::connect(config, &modules).await.map_err(|err| format!("connecting: {err}"))?;
    let service = NotifyService::new(&ctx, Vec::new());

    // The receiving side: K registered users, one socket each on the server.
    let http = http_client()?;
    let base = http_base(&args.node);
    let run = Uuid::new_v4().simple().to_string()[..12].to_owned();
    let (http_ref, base_ref, run_ref) = (&http, &base, &run);
    let registered: Vec<Result<TokenPair, String>> = stream::iter(0..args.users)
        .map(move |i| async move { register(http_ref, base_ref, &format!("notify-{run_ref}-{i}@example.com")).await })
        .buffered(8)
        .collect()
        .await;
    let registered: Vec<TokenPair> = registered.into_iter().collect::<Result<_, _>>()?;
    let ws = ws_base(&args.node);
    let sockets: Vec<Result<Ws, String>> = stream::iter(registered.iter())
        .map(|u| open_socket(format!("{ws}/ws/notifications/?token={}", u.access)))
        .buffered(16)
        .collect()
        .await;
    let sockets: Vec<Ws> = sockets.into_iter().collect::<Result<_, _>>()?;
    let users: Vec<Uuid> = registered
        .iter()
        .map(|u| u.user.id.parse().map_err(|err| format!("a user id that is not a UUID: {err}")))
        .collect::<Result<_, String>>()?;
    let users: Arc<Vec<Uuid>> = Arc::new(users);

    // Warm-up: one call per user, untimed (type lookups, pool connections, plans).
    let shared = Arc::new(Shared { base: Instant::now(), delivered: AtomicU64::new(0) });
    let (stop_tx, stop_rx) = watch::channel(false);
    let readers: Vec<_> =
        sockets.into_iter().map(|ws| tokio::spawn(socket_task(ws, shared.clone(), stop_rx.clone()))).collect();
    let warm_up = users.len() as u64;
    for (i, user) in users.iter().enumerate() {
        let preview = format!("{}|{}", shared.nanos(), u64::MAX - i as u64);
        service
            .notify(*user, TYPE_KEY, serde_json::json!({"sender_name": "bench", "preview": preview}))
            .await
            .map_err(|err| format!("warm-up notify: {err}"))?;
    }
    let warm_deadline = TokioInstant::now() + Duration::from_secs(5);
    while shared.delivered.load(Relaxed) < warm_up && TokioInstant::now() < warm_deadline {
        sleep(Duration::from_millis(10)).await;
    }
    let warm_delivered = shared.delivered.load(Relaxed);
    if warm_delivered < warm_up {
        return Err(format!(
            "warm-up: {warm_delivered} of {warm_up} notifications reached the sockets within 5 s \
             (same REDIS_URL and REDIS_PREFIX as the server?)"
        ));
    }

    // Measured window.
    let next = Arc::new(AtomicUsize::new(0));
    let start = TokioInstant::now() + Duration::from_millis(50);
    let end = start + Duration::from_secs(args.seconds);
    let callers: Vec<_> = (0..args.concurrency)
        .map(|_| tokio::spawn(caller_task(service.clone(), users.clone(), next.clone(), shared.clone(), start, end)))
        .collect();
    let mut calls = CallerStats::default();
    for caller in callers {
        let mut stats = caller.await.map_err(|err| format!("a caller task failed: {err}"))?;
        calls.ok += stats.ok;
        calls.errors += stats.errors;
        if calls.first_error.is_none() {
            calls.first_error = stats.first_error.take();
        }
        calls.call_us.append(&mut stats.call_us);
    }
    // Up to 5 s for stragglers (less if everything has arrived).
    let deadline = TokioInstant::now().max(end) + Duration::from_secs(5);
    while shared.delivered.load(Relaxed) < warm_up + calls.ok && TokioInstant::now() < deadline {
        sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    let mut sockets = Vec::with_capacity(readers.len());
    for reader in readers {
        sockets.push(reader.await.map_err(|err| format!("a socket task failed: {err}"))?);
    }
    if let Some(err) = &calls.first_error {
        eprintln!("notify-load: {} calls failed; first: {err}", calls.errors);
    }

    // The warm-up deliveries are the first ones of every socket; leave them out.
    let delivered_all: u64 = sockets.iter().map(|s| s.delivered).sum();
    let delivered = delivered_all.saturating_sub(warm_up);
    let mut latencies: Vec<u32> = Vec::with_capacity(delivered as usize);
    for socket in &mut sockets {
        latencies.extend(socket.latencies_us.iter().skip(1));
    }
    latencies.sort_unstable();
    calls.call_us.sort_unstable();
    let seconds = args.seconds as f64;
    let report = ThroughputReport {
        users: args.users,
        concurrency: args.concurrency,
        seconds: args.seconds,
        calls: calls.ok,
        calls_per_s: round(calls.ok as f64 / seconds, 1),
        errors: calls.errors,
        delivered,
        delivered_per_s: round(delivered as f64 / seconds, 1),
        lost: calls.ok.saturating_sub(delivered),
        duplicates: sockets.iter().map(|s| s.duplicates).sum(),
        p50_ms: round(percentile_ms(&latencies, 50.0), 3),
        p99_ms: round(percentile_ms(&latencies, 99.0), 3),
        max_ms: round(latencies.last().map_or(0.0, |&us| f64::from(us) / 1000.0), 3),
        call_p50_ms: round(percentile_ms(&calls.call_us, 50.0), 3),
        call_p99_ms: round(percentile_ms(&calls.call_us, 99.0), 3),
        count_frames: sockets.iter().map(|s| s.count_frames).sum::<u64>().saturating_sub(warm_up),
        disconnects: sockets.iter().filter(|s| s.disconnected).count(),
    };
    ctx.db().close().await;
    if args.json {
        println!("{}", serde_json::to_string(&report).map_err(|err| err.to_string())?);
    } else {
        let r = &report;
        println!(
            "users={} concurrency={} seconds={} calls={} calls_per_s={:.0} errors={} delivered={} \
             delivered_per_s={:.0} lost={} duplicates={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} \
             call_p50_ms={:.2} call_p99_ms={:.2} count_frames={} disconnects={}",
            r.users,
            r.concurrency,
            r.seconds,
            r.calls,
            r.calls_per_s,
            r.errors,
            r.delivered,
            r.delivered_per_s,
            r.lost,
            r.duplicates,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.call_p50_ms,
            r.call_p99_ms,
            r.count_frames,
            r.disconnects
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// seed

const SEED_INSERT: &str = "INSERT INTO notify_notifications \
     (id, recipient_id, type_id, title, body, data, is_read, read_at, created_at) \
     SELECT gen_random_uuid(), \
            CASE WHEN u THEN $1 ELSE md5('notify-seed-' || (g % $4))::uuid END, \
            $5, \
            CASE WHEN u THEN 'New message from bench' ELSE 'New message from seed ' || (g % 97) END, \
            'seeded notification ' || g, \
            '{}'::jsonb, \
            NOT u AND g % 4 <> 0, \
            CASE WHEN NOT u AND g % 4 <> 0 THEN now() - g * interval '1 second' END, \
            now() - g * interval '2 seconds' \
     FROM (SELECT g, (g % $3 = 0 AND g / $3 <= $2) AS u FROM generate_series(1, $6::bigint) AS g) AS s";

const SEED_COUNTERS: &str = "INSERT INTO notify_unread_counts (user_id, unread) \
     SELECT recipient_id, count(*) FILTER (WHERE NOT is_read) FROM notify_notifications \
     WHERE recipient_id = $1 OR recipient_id IN \
         (SELECT md5('notify-seed-' || k)::uuid FROM generate_series(0, $2 - 1) AS k) \
     GROUP BY recipient_id \
     ON CONFLICT (user_id) DO UPDATE SET unread = excluded.unread";

async fn seed(args: SeedArgs) -> Result<(), String> {
    if !args.database_url.starts_with("postgres") {
        return Err("seed runs on PostgreSQL only (generate_series)".into());
    }
    if args.total <= 0 || args.user_rows < 0 || args.user_rows > args.total || args.recipients <= 0 {
        return Err("need 0 <= --user-rows <= --total, and --total, --recipients > 0".into());
    }
    let started = Instant::now();
    let mut conn = sqlx::PgConnection::connect(&args.database_url).await.map_err(|err| format!("connecting: {err}"))?;
    let type_id: i64 = sqlx::query_scalar("SELECT id FROM notify_types WHERE key = $1")
        .bind(TYPE_KEY)
        .fetch_optional(&mut conn)
        .await
        .map_err(|err| format!("reading notify_types: {err}"))?
        .ok_or_else(|| format!("no notification type {TYPE_KEY:?} (is the database migrated?)"))?;
    // The user's rows are every stride-th one, so they are spread over the table like the rest.
    let stride = if args.user_rows == 0 { args.total + 1 } else { (args.total / args.user_rows).max(1) };
    sqlx::query("SET synchronous_commit = off").execute(&mut conn).await.map_err(|err| err.to_string())?;
    let inserted = sqlx::query(SEED_INSERT)
        .bind(args.user)
        .bind(args.user_rows)
        .bind(stride)
        .bind(args.recipients)
        .bind(type_id)
        .bind(args.total)
        .execute(&mut conn)
        .await
        .map_err(|err| format!("inserting: {err}"))?
        .rows_affected();
    let insert_s = started.elapsed().as_secs_f64();
    sqlx::query(SEED_COUNTERS)
        .bind(args.user)
        .bind(args.recipients)
        .execute(&mut conn)
        .await
        .map_err(|err| format!("unread counters: {err}"))?;
    sqlx::query("ANALYZE notify_notifications").execute(&mut conn).await.map_err(|err| format!("analyze: {err}"))?;
    sqlx::query("ANALYZE notify_unread_counts").execute(&mut conn).await.map_err(|err| format!("analyze: {err}"))?;
    let counter: Option<i64> = sqlx::query_scalar("SELECT unread FROM notify_unread_counts WHERE user_id = $1")
        .bind(args.user)
        .fetch_optional(&mut conn)
        .await
        .map_err(|err| err.to_string())?;
    let user_unread: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notify_notifications WHERE recipient_id = $1 AND NOT is_read")
            .bind(args.user)
            .fetch_one(&mut conn)
            .await
            .map_err(|err| err.to_string())?;
    let table_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM notify_notifications")
        .fetch_one(&mut conn)
        .await
        .map_err(|err| err.to_string())?;
    let _ = conn.close().await;
    println!(
        "inserted={inserted} table_rows={table_rows} user_unread={user_unread} user_counter={} insert_s={:.1} total_s={:.1}",
        counter.map_or_else(|| "-".to_owned(), |c| c.to_string()),
        insert_s,
        started.elapsed().as_secs_f64()
    );
    if counter != Some(user_unread) {
        return Err(format!("the user's unread counter ({counter:?}) is not the unread count ({user_unread})"));
    }
    Ok(())
}
