//! WebSocket load tool for the chat benchmark (bench/chat.sh). Loopback use only.
//!
//! `chat-load fanout` puts N clients in one room, K of them sending R messages/s in total for
//! S seconds; every client reads every frame, and the tool reports deliveries, losses,
//! duplicates and send-to-receive latency (one line, or `--json`):
//!   - `--target rust`: N users registered on the first node, one group conversation created by
//!     user 0 with everyone in it, client i connected to `ws/chat/{id}/?token=…` on node i % M;
//!   - `--target django`: N anonymous clients on the Channels peer's `ws/room/`.
//!
//! `chat-load idle` opens N idle sockets to one conversation and reports the server's RSS per
//! connection (`--pid`), then checks on a sample that `{"type":"ping"}` gets `{"type":"pong"}`.
//!
//! One tokio worker thread per core (`--threads` to change). The tool does not raise its own
//! open-files limit: run `ulimit -n $(ulimit -Hn)` first (bench/chat.sh does).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use futures::{SinkExt, StreamExt, stream};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant as TokioInstant, Interval, MissedTickBehavior, interval_at, sleep, sleep_until};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_with_config};

use saas_bench::{TokenPair, expect_created, http_base, http_client, percentile_ms, register, round, ws_base};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Sequence numbers above this are not ours (bounds the duplicate-detection bitmaps).
const MAX_SEQ: u32 = 1 << 24;

const ABOUT: &str = "WebSocket load tool for bench/chat.sh: chat fan-out and idle-connection memory.";
const IDLE_HELP: &str = "This tool does not raise its open-files limit: run `ulimit -n $(ulimit -Hn)` \
in the shell first (bench/chat.sh does). N connections need N descriptors here and N in the server.";

#[derive(Parser)]
#[command(name = "chat-load", about = ABOUT, after_help = IDLE_HELP)]
struct Cli {
    /// Tokio worker threads (default: one per core).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// N clients in one room; K senders at R messages/s in total for S seconds.
    Fanout(FanoutArgs),
    /// N idle connections to one conversation: server RSS per connection, ping/pong check.
    #[command(after_help = IDLE_HELP)]
    Idle(IdleArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    /// saas-server: registered users, a group conversation, ws/chat/{id}/?token=…
    Rust,
    /// The Django Channels peer: anonymous clients on ws/room/.
    Django,
}

#[derive(Args)]
struct FanoutArgs {
    /// Connected clients (all in the same room).
    #[arg(long)]
    clients: usize,
    /// Total messages per second over all senders.
    #[arg(long)]
    rate: f64,
    /// Length of the sending window.
    #[arg(long)]
    seconds: u64,
    /// Server base URL (http://host:port); repeat for several nodes (client i uses node i % M).
    #[arg(long = "node", required = true)]
    nodes: Vec<String>,
    #[arg(long, value_enum, default_value_t = Target::Rust)]
    target: Target,
    /// How many clients send (the first K; default: all of them).
    #[arg(long)]
    senders: Option<usize>,
    /// Print the result as one JSON object instead of key=value.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct IdleArgs {
    /// Idle WebSocket connections to open.
    #[arg(long)]
    connections: usize,
    /// Server base URL (http://host:port).
    #[arg(long)]
    node: String,
    /// Keep the connections open this long after the measurement.
    #[arg(long, default_value_t = 0)]
    hold_seconds: u64,
    /// Server process whose VmRSS is read from /proc/<pid>/status.
    #[arg(long)]
    pid: Option<u32>,
    /// Use this access token instead of registering a user.
    #[arg(long)]
    token: Option<String>,
    /// Connections that check ping -> pong.
    #[arg(long, default_value_t = 10)]
    sample: usize,
    /// Connection attempts in flight at once.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Print the result as one JSON object instead of key=value.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads =
        cli.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("chat-load: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Fanout(args) => fanout(args).await,
            Command::Idle(args) => idle(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("chat-load: {err}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP set-up (registration, conversation) and connecting

#[derive(Deserialize)]
struct Created {
    id: String,
}

fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

async fn create_group(
    http: &reqwest::Client,
    base: &str,
    access: &str,
    title: &str,
    participant_ids: &[String],
) -> Result<String, String> {
    let what = "creating the group conversation";
    let resp = http
        .post(format!("{base}/api/v1/chat/conversations/"))
        .bearer_auth(access)
        .json(&serde_json::json!({
            "conversation_type": "group",
            "title": title,
            "participant_ids": participant_ids,
        }))
        .send()
        .await
        .map_err(|err| format!("{what}: {err}"))?;
    Ok(expect_created::<Created>(resp, what).await?.id)
}

/// Registers `n` users (8 registrations in flight), creates one group with all of them and
/// returns each client's socket URL, client i on node i % M.
async fn rust_setup(nodes: &[String], n: usize) -> Result<Vec<String>, String> {
    if n < 2 {
        return Err("the rust target needs at least 2 clients (a group of one is not a chat)".into());
    }
    let http = http_client()?;
    let base = http_base(&nodes[0]);
    let run = run_id();
    let (http_ref, base_ref, run_ref) = (&http, &base, &run);
    let users: Vec<Result<TokenPair, String>> = stream::iter(0..n)
        .map(move |i| async move { register(http_ref, base_ref, &format!("load-{run_ref}-{i}@example.com")).await })
        .buffered(8)
        .collect()
        .await;
    let users: Vec<TokenPair> = users.into_iter().collect::<Result<_, _>>()?;
    let others: Vec<String> = users[1..].iter().map(|u| u.user.id.clone()).collect();
    let conversation = create_group(&http, &base, &users[0].access, "load", &others).await?;
    Ok(users
        .iter()
        .enumerate()
        .map(|(i, u)| format!("{}/ws/chat/{conversation}/?token={}", ws_base(&nodes[i % nodes.len()]), u.access))
        .collect())
}

/// The URL without its query (no token in error messages).
fn redact(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

async fn connect(url: &str, config: WebSocketConfig) -> Result<Ws, String> {
    // TCP_NODELAY on: small frames, and the latency is what is measured.
    match connect_async_with_config(url, Some(config), true).await {
        Ok((ws, _response)) => Ok(ws),
        Err(err) => Err(format!("{}: {err}", redact(url))),
    }
}

/// Connects every URL (at most `in_flight` handshakes at once); all must succeed.
async fn connect_all(urls: &[String], in_flight: usize) -> Result<Vec<Ws>, String> {
    let results: Vec<(usize, Result<Ws, String>)> = stream::iter(urls.iter().enumerate())
        .map(|(i, url)| async move { (i, connect(url, WebSocketConfig::default()).await) })
        .buffer_unordered(in_flight.max(1))
        .collect()
        .await;
    let mut sockets: Vec<Option<Ws>> = (0..urls.len()).map(|_| None).collect();
    let mut failed = 0;
    let mut first_error = None;
    for (i, result) in results {
        match result {
            Ok(ws) => sockets[i] = Some(ws),
            Err(err) => {
                failed += 1;
                first_error.get_or_insert(err);
            }
        }
    }
    if let Some(err) = first_error {
        return Err(format!("{failed} of {} connections failed; first: {err}", urls.len()));
    }
    Ok(sockets.into_iter().flatten().collect())
}

// ---------------------------------------------------------------------------------------------
// Frames: only the fields we need, borrowed from the text

/// rust: `{"type":"message.new","message":{"content":…}}`; django echoes `{"type":"message","content":…}`.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a str>,
    #[serde(borrow, default)]
    content: Option<&'a str>,
    #[serde(borrow, default)]
    message: Option<MessageBody<'a>>,
}

#[derive(Deserialize)]
struct MessageBody<'a> {
    #[serde(borrow, default)]
    content: Option<&'a str>,
}

/// Just the type, for frames `Frame` does not fit (an `error` frame's `message` is a string).
#[derive(Deserialize)]
struct TypeOnly<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a str>,
}

fn frame_type(text: &str) -> Option<&str> {
    serde_json::from_str::<TypeOnly>(text).ok().and_then(|f| f.kind)
}

/// `"<nanos>|<sender>|<seq>"` → (nanos, sender, seq).
fn parse_content(content: &str) -> Option<(u64, u32, u32)> {
    let mut parts = content.split('|');
    let nanos = parts.next()?.parse().ok()?;
    let sender = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((nanos, sender, seq))
}

// ---------------------------------------------------------------------------------------------
// fanout

/// Counters every client updates; the main task reads them to stop early.
struct Shared {
    /// The clock the send times are written against (one process, so one clock).
    base: Instant,
    sent: AtomicU64,
    delivered: AtomicU64,
    senders_done: AtomicUsize,
}

impl Shared {
    fn nanos(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

/// A client's sending schedule.
struct Sender {
    ticker: Interval,
    id: u32,
    end: TokioInstant,
    seq: u32,
}

#[derive(Default)]
struct ClientStats {
    sent: u64,
    delivered: u64,
    duplicates: u64,
    error_frames: u64,
    disconnected: bool,
    latencies_us: Vec<u32>,
}

/// Which (sender, seq) a client has received: one bitmap per sender.
struct Seen {
    bits: Vec<Vec<u64>>,
}

impl Seen {
    fn new(senders: usize) -> Self {
        Self { bits: vec![Vec::new(); senders] }
    }

    /// None: not one of ours; Some(true): first time; Some(false): a duplicate.
    fn insert(&mut self, sender: u32, seq: u32) -> Option<bool> {
        if seq >= MAX_SEQ {
            return None;
        }
        let row = self.bits.get_mut(sender as usize)?;
        let (word, mask) = ((seq / 64) as usize, 1u64 << (seq % 64));
        if row.len() <= word {
            row.resize(word + 1, 0);
        }
        let first = row[word] & mask == 0;
        row[word] |= mask;
        Some(first)
    }
}

async fn next_tick(sender: &mut Option<Sender>) -> TokioInstant {
    match sender {
        Some(sender) => sender.ticker.tick().await,
        None => std::future::pending().await,
    }
}

fn on_text(text: &str, shared: &Shared, seen: &mut Seen, stats: &mut ClientStats) {
    let content = match serde_json::from_str::<Frame>(text) {
        Ok(frame) => match frame.message.and_then(|m| m.content).or(frame.content) {
            Some(content) => content,
            None => {
                if frame.kind == Some("error") {
                    stats.error_frames += 1;
                }
                return;
            }
        },
        Err(_) => {
            if frame_type(text) == Some("error") {
                stats.error_frames += 1;
            }
            return;
        }
    };
    let Some((sent_ns, sender, seq)) = parse_content(content) else { return };
    match seen.insert(sender, seq) {
        None => {}
        Some(false) => stats.duplicates += 1,
        Some(true) => {
            let micros = shared.nanos().saturating_sub(sent_ns) / 1000;
            stats.latencies_us.push(micros.min(u64::from(u32::MAX)) as u32);
            stats.delivered += 1;
            shared.delivered.fetch_add(1, Relaxed);
        }
    }
}

/// One client: sends on its schedule (if it is a sender) and reads every frame until told to stop.
async fn client_task(
    mut ws: Ws,
    mut sender: Option<Sender>,
    senders: usize,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    capacity: usize,
) -> ClientStats {
    let mut stats = ClientStats { latencies_us: Vec::with_capacity(capacity), ..ClientStats::default() };
    let mut seen = Seen::new(senders);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            at = next_tick(&mut sender) => {
                let Some(s) = sender.as_mut() else { continue };
                if at >= s.end {
                    sender = None;
                    shared.senders_done.fetch_add(1, Relaxed);
                    continue;
                }
                let text = format!(r#"{{"type":"message","content":"{}|{}|{}"}}"#, shared.nanos(), s.id, s.seq);
                s.seq += 1;
                if ws.send(Message::text(text)).await.is_err() {
                    stats.disconnected = true;
                    break;
                }
                stats.sent += 1;
                shared.sent.fetch_add(1, Relaxed);
            }
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => on_text(text.as_str(), &shared, &mut seen, &mut stats),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    stats.disconnected = true;
                    break;
                }
                Some(Ok(_)) => {} // ping, pong, binary
            },
        }
    }
    if sender.is_some() {
        shared.senders_done.fetch_add(1, Relaxed); // a sender that died early is done too
    }
    if !stats.disconnected {
        let _ = ws.send(Message::Close(None)).await;
    }
    stats
}

#[derive(Serialize)]
struct FanoutReport {
    target: &'static str,
    clients: usize,
    nodes: usize,
    senders: usize,
    seconds: u64,
    rate_in: f64,
    sent: u64,
    expected: u64,
    delivered: u64,
    lost: u64,
    duplicates: u64,
    delivered_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    disconnects: usize,
    error_frames: u64,
}

async fn fanout(args: FanoutArgs) -> Result<(), String> {
    let n = args.clients;
    if n == 0 || args.seconds == 0 || !(args.rate > 0.0 && args.rate.is_finite()) {
        return Err("--clients, --rate and --seconds must be positive".into());
    }
    let k = args.senders.unwrap_or(n).clamp(1, n);
    // Each sender sends every K/R seconds; sender j starts j/K of a period later, so the
    // total stream is evenly spread rather than K messages at once.
    let period = Duration::from_secs_f64(k as f64 / args.rate);
    if period < Duration::from_micros(1) {
        return Err("--rate too high for this many senders".into());
    }

    let urls: Vec<String> = match args.target {
        Target::Rust => rust_setup(&args.nodes, n).await?,
        Target::Django => (0..n).map(|i| format!("{}/ws/room/", ws_base(&args.nodes[i % args.nodes.len()]))).collect(),
    };
    let sockets = connect_all(&urls, 64).await?;
    sleep(Duration::from_millis(500)).await;

    let shared = Arc::new(Shared {
        base: Instant::now(),
        sent: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        senders_done: AtomicUsize::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let start = TokioInstant::now() + Duration::from_millis(100); // all tasks spawned by then
    let end = start + Duration::from_secs(args.seconds);
    let capacity = ((args.rate * args.seconds as f64) as usize).min(1 << 22) + 16;
    let mut handles = Vec::with_capacity(n);
    for (i, ws) in sockets.into_iter().enumerate() {
        let sender = (i < k).then(|| {
            let mut ticker = interval_at(start + period.mul_f64(i as f64 / k as f64), period);
            // Burst: a late tick (the tool or the socket stalled) is sent at once, so the offered
            // load stays R messages/s, open loop, as from independent users. Delay would quietly
            // lower the offered rate whenever the server pushes back, hiding its slowness
            // (coordinated omission). `sent` shows any shortfall against rate_in × seconds.
            ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
            Sender { ticker, id: i as u32, end, seq: 0 }
        });
        handles.push(tokio::spawn(client_task(ws, sender, k, shared.clone(), stop_rx.clone(), capacity)));
    }

    // Sending window, then up to 5 s for stragglers (less if everything has arrived).
    sleep_until(end).await;
    let deadline = end + Duration::from_secs(5);
    loop {
        let senders_done = shared.senders_done.load(Relaxed) >= k;
        let expected = shared.sent.load(Relaxed) * n as u64;
        if (senders_done && shared.delivered.load(Relaxed) >= expected) || TokioInstant::now() >= deadline {
            break;
        }
        sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);

    let mut clients = Vec::with_capacity(n);
    for handle in handles {
        clients.push(handle.await.map_err(|err| format!("a client task failed: {err}"))?);
    }
    let sent: u64 = clients.iter().map(|c| c.sent).sum();
    let delivered: u64 = clients.iter().map(|c| c.delivered).sum();
    let expected = sent * n as u64;
    let mut latencies: Vec<u32> = Vec::with_capacity(delivered as usize);
    for client in &mut clients {
        latencies.append(&mut client.latencies_us);
    }
    latencies.sort_unstable();
    let report = FanoutReport {
        target: match args.target {
            Target::Rust => "rust",
            Target::Django => "django",
        },
        clients: n,
        nodes: args.nodes.len(),
        senders: k,
        seconds: args.seconds,
        rate_in: args.rate,
        sent,
        expected,
        delivered,
        lost: expected.saturating_sub(delivered),
        duplicates: clients.iter().map(|c| c.duplicates).sum(),
        delivered_per_s: round(delivered as f64 / args.seconds as f64, 1),
        p50_ms: round(percentile_ms(&latencies, 50.0), 3),
        p99_ms: round(percentile_ms(&latencies, 99.0), 3),
        max_ms: round(latencies.last().map_or(0.0, |&us| f64::from(us) / 1000.0), 3),
        disconnects: clients.iter().filter(|c| c.disconnected).count(),
        error_frames: clients.iter().map(|c| c.error_frames).sum(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report).map_err(|err| err.to_string())?);
    } else {
        let r = &report;
        println!(
            "clients={} nodes={} rate_in={} sent={} expected={} delivered={} lost={} duplicates={} \
             delivered_per_s={:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} disconnects={} error_frames={}",
            r.clients,
            r.nodes,
            r.rate_in,
            r.sent,
            r.expected,
            r.delivered,
            r.lost,
            r.duplicates,
            r.delivered_per_s,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.disconnects,
            r.error_frames
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// idle

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Hold,
    Ping,
    Close,
}

#[derive(Default)]
struct IdleStats {
    pongs: AtomicUsize,
    disconnects: AtomicUsize,
    frames: AtomicU64,
}

/// VmRSS of a process, in kB.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One idle connection: drains whatever the server sends, pings when told (sample ones), closes
/// when told.
async fn hold(mut ws: Ws, sample: bool, mut phase: watch::Receiver<Phase>, stats: Arc<IdleStats>) {
    let mut waiting_pong = false;
    loop {
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = *phase.borrow_and_update();
                match now {
                    Phase::Close => break,
                    Phase::Ping if sample => {
                        if ws.send(Message::text(String::from(r#"{"type":"ping"}"#))).await.is_err() {
                            stats.disconnects.fetch_add(1, Relaxed);
                            return;
                        }
                        waiting_pong = true;
                    }
                    _ => {}
                }
            }
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    stats.frames.fetch_add(1, Relaxed);
                    if waiting_pong && frame_type(text.as_str()) == Some("pong") {
                        waiting_pong = false;
                        stats.pongs.fetch_add(1, Relaxed);
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    stats.disconnects.fetch_add(1, Relaxed);
                    return;
                }
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = ws.send(Message::Close(None)).await;
}

#[derive(Serialize)]
struct IdleReport {
    connections: usize,
    failed: usize,
    rss_before_kb: Option<u64>,
    rss_after_kb: Option<u64>,
    per_connection_bytes: Option<i64>,
    pongs: usize,
    ping_sample: usize,
    disconnects: usize,
    frames_received: u64,
}

fn or_dash<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

async fn idle(args: IdleArgs) -> Result<(), String> {
    let base = http_base(&args.node);
    let http = http_client()?;
    let run = run_id();
    let access = match args.token.clone() {
        Some(token) => token,
        None => register(&http, &base, &format!("idle-{run}-0@example.com")).await?.access,
    };
    let conversation = match create_group(&http, &base, &access, "idle", &[]).await {
        Ok(id) => id,
        Err(err) => {
            eprintln!("chat-load: a group with nobody else was refused ({err}); adding a second user");
            let other = register(&http, &base, &format!("idle-{run}-1@example.com")).await?;
            create_group(&http, &base, &access, "idle", &[other.user.id]).await?
        }
    };
    let url = format!("{}/ws/chat/{conversation}/?token={access}", ws_base(&args.node));

    let rss_before = args.pid.and_then(rss_kb);
    let stats = Arc::new(IdleStats::default());
    let (phase_tx, phase_rx) = watch::channel(Phase::Hold);
    // Idle sockets: a small read buffer (the default 128 KiB is allocated eagerly).
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let sample = args.sample;
    let results: Vec<Result<(usize, JoinHandle<()>), String>> = stream::iter(0..args.connections)
        .map(|i| {
            let (url, stats, phase) = (&url, stats.clone(), phase_rx.clone());
            async move {
                let ws = connect(url, config).await?;
                Ok((i, tokio::spawn(hold(ws, i < sample, phase, stats))))
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let (mut handles, mut failed, mut sample_open, mut first_error) = (Vec::new(), 0, 0, None);
    for result in results {
        match result {
            Ok((i, handle)) => {
                sample_open += usize::from(i < sample);
                handles.push(handle);
            }
            Err(err) => {
                failed += 1;
                first_error.get_or_insert(err);
            }
        }
    }
    if let Some(err) = &first_error {
        eprintln!("chat-load: {failed} of {} connections failed; first: {err}", args.connections);
    }

    sleep(Duration::from_secs(2)).await;
    let rss_after = args.pid.and_then(rss_kb);
    let open = handles.len();
    let per_connection_bytes = match (rss_before, rss_after) {
        (Some(before), Some(after)) if open > 0 => Some((after as i64 - before as i64) * 1024 / open as i64),
        _ => None,
    };

    let _ = phase_tx.send(Phase::Ping);
    let ping_deadline = TokioInstant::now() + Duration::from_secs(5);
    while stats.pongs.load(Relaxed) < sample_open && TokioInstant::now() < ping_deadline {
        sleep(Duration::from_millis(10)).await;
    }
    let pongs = stats.pongs.load(Relaxed);
    sleep(Duration::from_secs(args.hold_seconds)).await;
    let disconnects = stats.disconnects.load(Relaxed);
    let _ = phase_tx.send(Phase::Close);
    let _ = tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(handles)).await;

    let report = IdleReport {
        connections: open,
        failed,
        rss_before_kb: rss_before,
        rss_after_kb: rss_after,
        per_connection_bytes,
        pongs,
        ping_sample: sample_open,
        disconnects,
        frames_received: stats.frames.load(Relaxed),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report).map_err(|err| err.to_string())?);
    } else {
        println!(
            "connections={} rss_before_kb={} rss_after_kb={} per_connection_bytes={} failed={} pongs={}/{} \
             disconnects={} frames_received={}",
            report.connections,
            or_dash(report.rss_before_kb),
            or_dash(report.rss_after_kb),
            or_dash(report.per_connection_bytes),
            report.failed,
            report.pongs,
            report.ping_sample,
            report.disconnects,
            report.frames_received
        );
    }
    if pongs < sample_open {
        return Err(format!("ping check: {pongs} of {sample_open} sampled connections got a pong"));
    }
    Ok(())
}
