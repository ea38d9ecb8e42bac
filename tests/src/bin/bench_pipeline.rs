//! `bench_pipeline`: the pipeline's three headline figures in one run, against
//! release binaries started by `deploy/bench.sh` (never part of CI).
//!
//! 1. Accepted jobs/s: closed loop, N keep-alive clients, `GET /api/v1/geo/nearest`
//!    answered 202 (the broker's acknowledgement: JetStream's PubAck, or
//!    RabbitMQ's publisher confirm). Then waits for the geo workers to drain.
//! 2. End-to-end nearest latency: open loop at a fixed rate, `Prefer: wait=N`,
//!    measured from each request's scheduled send time (no coordinated omission).
//! 3. Raw KNN query rate: `gad_workers::jobs::geo::nearest::query` on a warmed
//!    sqlx pool, no HTTP and no queue.
//!
//! The jobs queue is the services' `queue.backend` (`--queue`, from
//! `GAD_QUEUE__BACKEND`): phases 1, 2 and 5 run the same on either broker,
//! the drain reads the backlog where it is (`bench_pipeline/queue.rs`), and
//! phase 4 adds the raw RabbitMQ confirmed-publish rate when the jobs are there.
//!
//! `bench_pipeline --cleanup` only deletes the benchmark's streams and buckets;
//! `--cleanup-rabbitmq` only its RabbitMQ queues and exchanges.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use clap::Parser;
use gad_e2e::bench_format::{ms, thousands};
use gad_shared::settings::{NatsSettings, PostgresSettings};
use gad_shared::topology::Topology;
use gad_workers::jobs::geo::nearest;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, HOST, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[path = "bench_pipeline/queue.rs"]
mod queue;
#[path = "bench_pipeline/raw_publish.rs"]
mod raw_publish;

use queue::{QueueAccess, QueueKind};

/// Buenos Aires box of the seeded efectivos.
const LAT: (f64, f64) = (-34.705, -34.527);
const LNG: (f64, f64) = (-58.531, -58.335);
const K: i64 = 5;
/// Histograms in microseconds, up to 2 minutes.
const HIST_MAX_US: u64 = 120_000_000;

#[derive(Parser, Debug)]
#[command(name = "bench_pipeline", about = "GAD pipeline benchmark (run by deploy/bench.sh)")]
struct Args {
    /// Ingress base URL (plain http).
    #[arg(long, env = "BENCH_INGRESS_URL", default_value = "http://127.0.0.1:18080")]
    ingress_url: String,
    /// Supervisor access token.
    #[arg(long, env = "BENCH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Tokens of many usuarios, one per line, used in turn (rate limits are
    /// per usuario); replaces `--token` for the load.
    #[arg(long, env = "BENCH_TOKENS_FILE")]
    tokens_file: Option<std::path::PathBuf>,
    /// Database of the seeded bench data (phase 3).
    #[arg(long, env = "BENCH_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    #[arg(long, env = "GAD_NATS__URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Stream/bucket prefix of the benchmark's services.
    #[arg(long, env = "GAD_NATS__STREAM_PREFIX", default_value = "BENCH_")]
    stream_prefix: String,
    #[arg(long, env = "GAD_NATS__SUBJECT_PREFIX", default_value = "bench")]
    subject_prefix: String,
    /// Durable consumer of the geo group (on RabbitMQ: the lane `<prefix>GAD_JOBS.<this>`).
    #[arg(long, default_value = "geo")]
    consumer: String,
    /// The broker carrying the jobs, as the services were started with.
    #[arg(
        long,
        env = "GAD_QUEUE__BACKEND",
        value_enum,
        ignore_case = true,
        default_value = "jetstream"
    )]
    queue: QueueKind,
    /// RabbitMQ, when `--queue rabbitmq` (may carry a password: never printed).
    #[arg(
        long,
        env = "GAD_QUEUE__RABBITMQ__URL",
        hide_env_values = true,
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
    /// Phases to run, e.g. `1,2,3` or `2`.
    #[arg(long, env = "BENCH_PHASES", default_value = "1,2,3", value_delimiter = ',')]
    phases: Vec<u8>,
    /// Phase 1: concurrent closed-loop clients (one keep-alive connection each).
    #[arg(long, env = "BENCH_CLIENTS", default_value_t = 64)]
    clients: usize,
    /// Phases 1 and 2: measured seconds.
    #[arg(long, env = "BENCH_DURATION_S", default_value_t = 20)]
    duration_s: u64,
    /// Phase 1: unmeasured warm-up seconds before the window.
    #[arg(long, env = "BENCH_WARMUP_S", default_value_t = 2)]
    warmup_s: u64,
    /// Phase 2: requests per second, open loop.
    #[arg(long, env = "BENCH_RATE", default_value_t = 1000)]
    rate: u64,
    /// Phase 2: `Prefer: wait=N`.
    #[arg(long, env = "BENCH_WAIT_S", default_value_t = 5)]
    wait_s: u64,
    /// Phase 1 → 2: give up waiting for the backlog after this long, then purge it.
    #[arg(long, env = "BENCH_DRAIN_TIMEOUT_S", default_value_t = 600)]
    drain_timeout_s: u64,
    /// Phase 3: concurrent query tasks.
    #[arg(long, env = "BENCH_KNN_TASKS", default_value_t = 16)]
    knn_tasks: usize,
    /// Phase 3: pool size (min = max, warmed).
    #[arg(long, env = "BENCH_KNN_POOL", default_value_t = 10)]
    knn_pool: u32,
    /// Phase 3: measured seconds.
    #[arg(long, env = "BENCH_KNN_DURATION_S", default_value_t = 10)]
    knn_duration_s: u64,
    /// platform.md's JetStream publish ceiling (256 acks in flight), msg/s.
    #[arg(long, default_value_t = 119_000.0)]
    publish_ceiling: f64,
    /// platform.md's RabbitMQ ceiling (persistent, confirms, 256 in flight), msg/s.
    #[arg(long, default_value_t = 11_800.0)]
    rabbit_publish_ceiling: f64,
    /// A process to report CPU for, `name=pid` (repeatable).
    #[arg(long = "cpu-pid", value_parser = parse_named_pid)]
    cpu_pids: Vec<(String, u32)>,
    /// Skip the start-up probe (one `Prefer: wait=5` request that must answer 200),
    /// e.g. to measure ingress alone with no workers running.
    #[arg(long, env = "BENCH_NO_PROBE")]
    no_probe: bool,
    /// Phase 5: closed-loop clients of the overload run (2× ingress' default hard limit).
    #[arg(long, env = "BENCH_OVERLOAD_CLIENTS", default_value_t = 2000)]
    overload_clients: usize,
    /// Phase 4: seconds of raw JetStream publishing.
    #[arg(long, env = "BENCH_RAW_PUBLISH_S", default_value_t = 10)]
    raw_publish_s: u64,
    /// Only delete the prefixed streams and buckets, then exit.
    #[arg(long)]
    cleanup: bool,
    /// Only delete the prefixed RabbitMQ queues and exchanges (at `--amqp-url`), then exit.
    #[arg(long)]
    cleanup_rabbitmq: bool,
}

impl Args {
    /// The benchmark database's name (last path segment of the URL).
    fn bench_db(&self) -> Option<&str> {
        let url = self.database_url.as_deref()?;
        let path = url.split('?').next()?;
        path.rsplit('/').next().filter(|s| !s.is_empty())
    }
}

fn parse_named_pid(s: &str) -> Result<(String, u32), String> {
    let (name, pid) = s.split_once('=').ok_or("expected name=pid")?;
    Ok((name.to_string(), pid.parse().map_err(|e| format!("pid: {e}"))?))
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).map_err(|e| anyhow!("histogram: {e}"))
}

// ------------------------------------------------------------------ HTTP client

/// Where requests go; one raw HTTP/1.1 connection per client (hyper, keep-alive).
struct Target {
    addr: String,
    authority: HeaderValue,
    /// Used in turn, one per request.
    auth: Vec<HeaderValue>,
    turn: std::sync::atomic::AtomicUsize,
}

impl Target {
    fn new(url: &str, tokens: &[String]) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("ingress URL must be http://host:port"))?;
        let authority = rest.trim_end_matches('/').to_string();
        if authority.contains('/') {
            bail!("ingress URL must not have a path");
        }
        Ok(Self {
            addr: authority.clone(),
            authority: HeaderValue::from_str(&authority)?,
            auth: tokens
                .iter()
                .map(|t| HeaderValue::from_str(&format!("Bearer {}", t.trim())))
                .collect::<Result<_, _>>()?,
            turn: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    fn auth(&self) -> HeaderValue {
        let i = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.auth[i % self.auth.len()].clone()
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
        let tcp = tokio::net::TcpStream::connect(&self.addr).await?;
        tcp.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    fn nearest(&self, rng: &mut ChaCha8Rng, wait: Option<&HeaderValue>) -> anyhow::Result<Request<Empty<Bytes>>> {
        let lat = rng.random_range(LAT.0..LAT.1);
        let lng = rng.random_range(LNG.0..LNG.1);
        let mut b = Request::get(format!("/api/v1/geo/nearest?lat={lat:.6}&lng={lng:.6}&k={K}"))
            .header(HOST, self.authority.clone())
            .header(AUTHORIZATION, self.auth());
        if let Some(w) = wait {
            b = b.header("prefer", w.clone());
        }
        Ok(b.body(Empty::new())?)
    }
}

/// Sends one request on `sender` and reads the whole body (so the connection can be reused).
async fn exchange(
    sender: &mut SendRequest<Empty<Bytes>>,
    req: Request<Empty<Bytes>>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

// ------------------------------------------------------------------ CPU accounting

/// CPU ticks (1/100 s) per process group, read from /proc.
struct CpuSnap {
    at: Instant,
    groups: BTreeMap<String, u64>,
    machine_busy: u64,
    machine_all: u64,
}

const SHARED_SERVERS: [(&str, &str); 4] = [
    ("nats-server", "nats"),
    ("postgres", "postgres"),
    ("redis-server", "redis"),
    // RabbitMQ's Erlang VM (the only one on these machines).
    ("beam.smp", "rabbitmq"),
];

/// Resident memory of `pid`, KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn proc_ticks(path: &str) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let fields: Vec<&str> = text[close + 2..].split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

fn cpu_snapshot(named: &[(String, u32)], bench_db: Option<&str>) -> CpuSnap {
    let mut groups = BTreeMap::new();
    for (name, pid) in named {
        if let Some((_, t)) = proc_ticks(&format!("/proc/{pid}/stat")) {
            groups.insert(name.clone(), t);
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let file = entry.file_name();
            let Some(pid) = file.to_str().filter(|s| s.bytes().all(|b| b.is_ascii_digit())) else {
                continue;
            };
            if named.iter().any(|(_, p)| p.to_string() == pid) {
                continue;
            }
            if let Some((comm, t)) = proc_ticks(&format!("/proc/{pid}/stat"))
                && let Some((_, label)) = SHARED_SERVERS.iter().find(|(c, _)| *c == comm)
            {
                let mut label = (*label).to_string();
                if label == "postgres" {
                    // Backends show "postgres: user db host(port) state" as their command line.
                    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    let cmdline = String::from_utf8_lossy(&cmdline);
                    let ours = bench_db.is_some_and(|db| cmdline.split_whitespace().any(|w| w == db));
                    label = if ours { "postgres (bench db)" } else { "postgres (rest)" }.into();
                }
                *groups.entry(label).or_insert(0) += t;
            }
        }
    }
    if let Some((_, t)) = proc_ticks("/proc/self/stat") {
        groups.insert("bench client".into(), t);
    }
    let (mut busy, mut all) = (0, 0);
    if let Ok(stat) = std::fs::read_to_string("/proc/stat")
        && let Some(line) = stat.lines().next()
    {
        let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
        all = v.iter().take(8).sum();
        let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        busy = all.saturating_sub(idle);
    }
    CpuSnap {
        at: Instant::now(),
        groups,
        machine_busy: busy,
        machine_all: all,
    }
}

/// One line: each group's CPU in % of one core, and the machine's busy share;
/// also the CPU of processes not listed (other work on the machine), in %.
fn cpu_line(a: &CpuSnap, b: &CpuSnap) -> String {
    cpu_report(a, b).0
}

/// CPU milliseconds each group spent per unit of work (`units` done between the snapshots).
fn cpu_per_unit(a: &CpuSnap, b: &CpuSnap, units: u64, what: &str) -> String {
    if units == 0 {
        return String::new();
    }
    let mut parts: Vec<(String, f64)> = b
        .groups
        .iter()
        .map(|(k, t)| {
            let before = a.groups.get(k).copied().unwrap_or(*t);
            // ticks are 10 ms
            (k.clone(), t.saturating_sub(before) as f64 * 10.0 / units as f64)
        })
        .filter(|(k, v)| *v >= 0.005 && k != "postgres (rest)")
        .collect();
    parts.sort_by(|x, y| y.1.total_cmp(&x.1));
    let total: f64 = parts.iter().map(|(_, v)| v).sum();
    let list: Vec<String> = parts.iter().map(|(k, v)| format!("{k} {v:.2}")).collect();
    format!("cpu ms per {what}: {} (sum {total:.2})", list.join(", "))
}

fn cpu_report(a: &CpuSnap, b: &CpuSnap) -> (String, f64) {
    let secs = b.at.duration_since(a.at).as_secs_f64().max(1e-3);
    let mut parts: Vec<(String, f64)> = b
        .groups
        .iter()
        .map(|(k, t)| {
            let before = a.groups.get(k).copied().unwrap_or(*t);
            (k.clone(), t.saturating_sub(before) as f64 / secs)
        })
        .collect();
    parts.sort_by(|x, y| y.1.total_cmp(&x.1));
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let all = b.machine_all.saturating_sub(a.machine_all).max(1) as f64;
    let busy = b.machine_busy.saturating_sub(a.machine_busy) as f64 / all * 100.0 * cores as f64;
    let listed: f64 = parts.iter().map(|(_, v)| v).sum();
    let list: Vec<String> = parts.iter().map(|(k, v)| format!("{k} {v:.0}%")).collect();
    // "postgres (rest)" is other databases' work on the shared server: count it as other too.
    let rest = parts
        .iter()
        .filter(|(k, _)| k == "postgres (rest)")
        .map(|(_, v)| v)
        .sum::<f64>();
    let other = (busy - listed).max(0.0);
    let line = format!(
        "cpu (% of one core): {} | machine busy {busy:.0}% of {}%, of which other processes {other:.0}%",
        list.join(", "),
        cores * 100,
    );
    (line, other + rest)
}

// ------------------------------------------------------------------ phase 1

#[derive(Default)]
struct ClosedStats {
    accepted: u64,
    /// Jobs the broker took (200 or 202), warm-up and overrun included: what the drain waits for.
    published: u64,
    other: BTreeMap<u16, u64>,
    transport_errors: u64,
}

struct Phase1 {
    /// CPU of other work on the machine during the phase, % of one core.
    other_cpu: f64,
    accepted: u64,
    /// Every 200 or 202 of the phase, warm-up included.
    published: u64,
    rate: f64,
    other: BTreeMap<u16, u64>,
    transport_errors: u64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    min_sec: u64,
    max_sec: u64,
    cpu: String,
}

async fn closed_client(
    target: Arc<Target>,
    seed: u64,
    measure_from: Instant,
    end: Instant,
    per_second: Arc<Vec<AtomicU64>>,
) -> anyhow::Result<(ClosedStats, Histogram<u64>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut hist = histogram()?;
    let mut stats = ClosedStats::default();
    let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
    while Instant::now() < end {
        let mut s = match sender.take() {
            Some(s) => s,
            None => match target.connect().await {
                Ok(s) => s,
                Err(_) => {
                    stats.transport_errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let req = target.nearest(&mut rng, None)?;
        let started = Instant::now();
        let result = exchange(&mut s, req).await;
        let done = Instant::now();
        let counted = started >= measure_from && done <= end + Duration::from_secs(1);
        match result {
            Ok((status, _)) => {
                sender = Some(s);
                if status == StatusCode::ACCEPTED || status == StatusCode::OK {
                    stats.published += 1;
                }
                if !counted {
                    continue;
                }
                if status == StatusCode::ACCEPTED {
                    stats.accepted += 1;
                    hist.saturating_record(done.duration_since(started).as_micros() as u64);
                    let sec = started.duration_since(measure_from).as_secs() as usize;
                    if let Some(c) = per_second.get(sec) {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                } else {
                    *stats.other.entry(status.as_u16()).or_insert(0) += 1;
                }
            }
            Err(_) => {
                if counted {
                    stats.transport_errors += 1;
                }
            }
        }
    }
    Ok((stats, hist))
}

async fn phase1(args: &Args, target: Arc<Target>, clients: usize) -> anyhow::Result<Phase1> {
    let warm = Duration::from_secs(args.warmup_s);
    let window = Duration::from_secs(args.duration_s);
    println!(
        "\n[1] accepted jobs/s: {} closed-loop clients (raw hyper HTTP/1.1, keep-alive), GET nearest k={K}, \
         {}s warm-up + {}s measured; only 202s count",
        clients, args.warmup_s, args.duration_s
    );
    let start = Instant::now();
    let measure_from = start + warm;
    let end = measure_from + window;
    let per_second: Arc<Vec<AtomicU64>> = Arc::new((0..args.duration_s).map(|_| AtomicU64::new(0)).collect());
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        tasks.push(tokio::spawn(closed_client(
            target.clone(),
            1_000 + i as u64,
            measure_from,
            end,
            per_second.clone(),
        )));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_a = cpu_snapshot(&args.cpu_pids, args.bench_db());
    tokio::time::sleep_until(end.into()).await;
    let cpu_b = cpu_snapshot(&args.cpu_pids, args.bench_db());
    let mut hist = histogram()?;
    let mut total = ClosedStats::default();
    for t in tasks {
        let (s, h) = t.await??;
        total.accepted += s.accepted;
        total.published += s.published;
        total.transport_errors += s.transport_errors;
        for (code, n) in s.other {
            *total.other.entry(code).or_insert(0) += n;
        }
        hist.add(&h).map_err(|e| anyhow!("histogram: {e}"))?;
    }
    let secs: Vec<u64> = per_second.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let r = Phase1 {
        accepted: total.accepted,
        published: total.published,
        rate: total.accepted as f64 / window.as_secs_f64(),
        other: total.other,
        transport_errors: total.transport_errors,
        p50_us: hist.value_at_quantile(0.50),
        p99_us: hist.value_at_quantile(0.99),
        max_us: hist.max(),
        min_sec: secs.iter().copied().min().unwrap_or(0),
        max_sec: secs.iter().copied().max().unwrap_or(0),
        other_cpu: cpu_report(&cpu_a, &cpu_b).1,
        cpu: cpu_line(&cpu_a, &cpu_b),
    };
    let per_request = cpu_per_unit(
        &cpu_a,
        &cpu_b,
        total.accepted,
        "accepted request (workers run meanwhile)",
    );
    println!(
        "    accepted {} in {}s = {}/s (per-second min {} / max {}); 202 latency p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
        r.accepted,
        args.duration_s,
        thousands(r.rate),
        thousands(r.min_sec as f64),
        thousands(r.max_sec as f64),
        ms(r.p50_us),
        ms(r.p99_us),
        ms(r.max_us)
    );
    println!(
        "    non-202: {} ; transport errors: {}",
        if r.other.is_empty() {
            "none".to_string()
        } else {
            r.other
                .iter()
                .map(|(c, n)| format!("{c}×{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        r.transport_errors
    );
    println!("    {}", r.cpu);
    println!("    {per_request}");
    Ok(r)
}

// ------------------------------------------------------------------ drain

struct Drain {
    backlog: u64,
    secs: f64,
    purged: bool,
    /// RabbitMQ: accepted jobs that never got a terminal row while nothing
    /// was left waiting (see [`queue::Backlog::can_stall`]).
    unfinished: u64,
}

/// Nothing pending or unacknowledged, nor accounted as in flight, for this long
/// with no progress: the jobs left are not coming.
const STALL: Duration = Duration::from_secs(30);

/// [`drain`], or "nothing drained" when there is no geo consumer (ingress
/// measured alone, `BENCH_WORKER_GROUPS=[]`): the streams go at cleanup.
async fn drain_or_report(args: &Args, access: &QueueAccess, mark: u64, published: u64) -> Drain {
    match drain(args, access, mark, published).await {
        Ok(d) => d,
        Err(e) => {
            println!("    backlog not drained ({e:#}); left for cleanup");
            Drain {
                backlog: 0,
                secs: 0.0,
                purged: true,
                unfinished: 0,
            }
        }
    }
}

/// Waits until the geo lane has nothing pending or unacknowledged: the
/// backlog of the `published` jobs accepted since `mark` (a phase's start).
async fn drain(args: &Args, access: &QueueAccess, mark: u64, published: u64) -> anyhow::Result<Drain> {
    let named = &args.cpu_pids;
    let mut backlog = access.backlog(&args.consumer, mark, published).await?;
    let start = Instant::now();
    let cpu_a = cpu_snapshot(named, args.bench_db());
    let d0 = backlog.depth(true).await?;
    let (p0, a0) = (d0.pending, d0.unacked.unwrap_or(0));
    let first = p0 + a0;
    println!(
        "\n[drain] geo backlog after the phase on {}: {p0} pending + {a0} {}; waiting (≤ {} s)",
        args.queue.label(),
        backlog.unacked_label(),
        args.drain_timeout_s
    );
    let deadline = start + Duration::from_secs(args.drain_timeout_s);
    let mut last_report = start;
    let mut purged = false;
    let mut unfinished = 0;
    // The last change of the backlog (RabbitMQ's stall rule).
    let mut last_seen = (p0, a0);
    let mut last_change = start;
    loop {
        let report_due = last_report.elapsed() >= Duration::from_secs(15);
        let d = backlog.depth(report_due).await?;
        let p = d.pending;
        if let Some(a) = d.unacked {
            if p + a == 0 {
                break;
            }
            if (p, a) != last_seen {
                last_seen = (p, a);
                last_change = Instant::now();
            } else if p == 0 && backlog.can_stall() && last_change.elapsed() >= STALL {
                println!(
                    "    WARNING: {a} accepted jobs have no terminal jobs row and none waits on {}; \
                     no progress for {} s: ending the drain",
                    backlog.name(),
                    STALL.as_secs()
                );
                unfinished = a;
                break;
            }
        } else if p != last_seen.0 {
            last_seen.0 = p;
            last_change = Instant::now();
        }
        if Instant::now() >= deadline {
            let a = d.unacked.map_or("?".to_string(), |a| a.to_string());
            println!(
                "    backlog not drained within {} s ({p} + {a} left): purging {}",
                args.drain_timeout_s,
                backlog.name()
            );
            backlog.purge().await?;
            purged = true;
            tokio::time::sleep(Duration::from_secs(2)).await;
            break;
        }
        if report_due {
            let a = d.unacked.unwrap_or(0);
            let done = first.saturating_sub(p + a);
            println!(
                "    {:>4.0} s: {p} pending + {a} {} ({}/s so far)",
                start.elapsed().as_secs_f64(),
                backlog.unacked_label(),
                thousands(done as f64 / start.elapsed().as_secs_f64())
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A stalled drain ended with its last progress.
    let ended = if unfinished > 0 { last_change } else { Instant::now() };
    let secs = ended.duration_since(start).as_secs_f64();
    let cpu_b = cpu_snapshot(named, args.bench_db());
    let drained = first.saturating_sub(unfinished);
    if !purged {
        println!(
            "    drained {drained} jobs in {secs:.1} s = {}/s worker throughput (geo group, whole pipeline per job, {})",
            thousands(drained as f64 / secs.max(1e-3)),
            args.queue.label()
        );
        println!("    {}", cpu_line(&cpu_a, &cpu_b));
        println!("    {}", cpu_per_unit(&cpu_a, &cpu_b, drained, "drained job"));
    }
    // Let the status and event writes of the last jobs settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(Drain {
        backlog: drained,
        secs,
        purged,
        unfinished,
    })
}

// ------------------------------------------------------------------ phase 2

enum Answer {
    Ok,
    /// 202 after the wait: the result was not visible in time.
    Timeout,
    Status(u16),
    Transport,
    /// 200 without items (wrong database?).
    Empty,
}

struct Phase2 {
    /// CPU of other work on the machine during the phase, % of one core.
    other_cpu: f64,
    sent: u64,
    rate: f64,
    ok: u64,
    timeouts: u64,
    empty: u64,
    errors: BTreeMap<String, u64>,
    p50_us: u64,
    p90_us: u64,
    p99_us: u64,
    p999_us: u64,
    max_us: u64,
    max_lag_us: u64,
    cpu: String,
}

type Pool = Arc<Mutex<Vec<SendRequest<Empty<Bytes>>>>>;

fn take_conn(pool: &Pool) -> Option<SendRequest<Empty<Bytes>>> {
    let mut p = pool.lock().ok()?;
    while let Some(s) = p.pop() {
        if !s.is_closed() {
            return Some(s);
        }
    }
    None
}

fn give_conn(pool: &Pool, s: SendRequest<Empty<Bytes>>) {
    if let Ok(mut p) = pool.lock() {
        p.push(s);
    }
}

async fn open_loop_request(target: &Target, pool: &Pool, req: Request<Empty<Bytes>>, timeout: Duration) -> Answer {
    let mut sender = match take_conn(pool) {
        Some(s) => s,
        None => match target.connect().await {
            Ok(s) => s,
            Err(_) => return Answer::Transport,
        },
    };
    match tokio::time::timeout(timeout, exchange(&mut sender, req)).await {
        Ok(Ok((status, body))) => {
            give_conn(pool, sender);
            match status {
                StatusCode::OK => {
                    if body.windows(9).any(|w| w == b"\"items\":[") && !body.windows(10).any(|w| w == b"\"items\":[]") {
                        Answer::Ok
                    } else {
                        Answer::Empty
                    }
                }
                StatusCode::ACCEPTED => Answer::Timeout,
                other => Answer::Status(other.as_u16()),
            }
        }
        Ok(Err(_)) | Err(_) => Answer::Transport,
    }
}

async fn phase2(args: &Args, target: Arc<Target>) -> anyhow::Result<Phase2> {
    let rate = args.rate.max(1);
    let total = rate * args.duration_s;
    println!(
        "\n[2] end-to-end nearest latency: open loop at {rate}/s for {}s, `Prefer: wait={}`, \
         latency from the scheduled send time to the full 200 body (result visible to the client)",
        args.duration_s, args.wait_s
    );
    let pool: Pool = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..32 {
        give_conn(&pool, target.connect().await.context("connecting to ingress")?);
    }
    let wait = HeaderValue::from_str(&format!("wait={}", args.wait_s))?;
    let timeout = Duration::from_secs(args.wait_s + 5);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Answer, u64)>();
    let collector = tokio::spawn(async move {
        let mut all = histogram()?;
        let mut ok_h = histogram()?;
        let mut counts: (u64, u64, u64) = (0, 0, 0);
        let mut errors: BTreeMap<String, u64> = BTreeMap::new();
        while let Some((answer, us)) = rx.recv().await {
            match answer {
                Answer::Ok => {
                    counts.0 += 1;
                    ok_h.saturating_record(us);
                    all.saturating_record(us);
                }
                Answer::Timeout => {
                    counts.1 += 1;
                    all.saturating_record(us);
                }
                Answer::Empty => {
                    counts.2 += 1;
                    all.saturating_record(us);
                }
                // Failures count in the percentiles too, at the time they took.
                Answer::Status(c) => {
                    *errors.entry(format!("HTTP {c}")).or_insert(0) += 1;
                    all.saturating_record(us);
                }
                Answer::Transport => {
                    *errors.entry("transport/timeout".into()).or_insert(0) += 1;
                    all.saturating_record(us);
                }
            }
        }
        anyhow::Ok((all, ok_h, counts, errors))
    });
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let interval_ns = 1_000_000_000 / rate;
    let start = Instant::now() + Duration::from_millis(50);
    let cpu_a = cpu_snapshot(&args.cpu_pids, args.bench_db());
    let mut max_lag = Duration::ZERO;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let at = start + Duration::from_nanos(i * interval_ns);
        tokio::time::sleep_until(at.into()).await;
        max_lag = max_lag.max(Instant::now().saturating_duration_since(at));
        let req = target.nearest(&mut rng, Some(&wait))?;
        let (t, p, tx) = (target.clone(), pool.clone(), tx.clone());
        tasks.spawn(async move {
            let answer = open_loop_request(&t, &p, req, timeout).await;
            let _ = tx.send((answer, at.elapsed().as_micros() as u64));
        });
        // Reap finished tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    let send_window = start.elapsed().as_secs_f64();
    let cpu_b = cpu_snapshot(&args.cpu_pids, args.bench_db());
    while tasks.join_next().await.is_some() {}
    drop(tx);
    let (all, _ok_h, (ok, timeouts, empty), errors) = collector.await??;
    let r = Phase2 {
        sent: total,
        rate: total as f64 / send_window,
        ok,
        timeouts,
        empty,
        errors,
        p50_us: all.value_at_quantile(0.50),
        p90_us: all.value_at_quantile(0.90),
        p99_us: all.value_at_quantile(0.99),
        p999_us: all.value_at_quantile(0.999),
        max_us: all.max(),
        max_lag_us: max_lag.as_micros() as u64,
        other_cpu: cpu_report(&cpu_a, &cpu_b).1,
        cpu: cpu_line(&cpu_a, &cpu_b),
    };
    println!(
        "    sent {} at {:.0}/s achieved (scheduler lag max {:.1} ms); 200 with items {} ({:.0}/s), \
         timeouts (202 after wait) {}, empty {}, errors {}",
        r.sent,
        r.rate,
        ms(r.max_lag_us),
        r.ok,
        r.ok as f64 / args.duration_s.max(1) as f64,
        r.timeouts,
        r.empty,
        fmt_errors(&r.errors)
    );
    println!(
        "    latency of every request (failures included) p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.1} ms",
        ms(r.p50_us),
        ms(r.p90_us),
        ms(r.p99_us),
        ms(r.p999_us),
        ms(r.max_us)
    );
    println!("    {}", r.cpu);
    Ok(r)
}

fn fmt_errors(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        "0".into()
    } else {
        errors
            .iter()
            .map(|(k, v)| format!("{k}×{v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

// ------------------------------------------------------------------ phase 3

struct Phase3 {
    /// CPU of other work on the machine during the phase, % of one core.
    other_cpu: f64,
    queries: u64,
    rate: f64,
    errors: u64,
    empty: u64,
    p50_us: u64,
    p99_us: u64,
    cpu: String,
}

async fn phase3(args: &Args) -> anyhow::Result<Phase3> {
    let url = args
        .database_url
        .clone()
        .ok_or_else(|| anyhow!("phase 3 needs --database-url / BENCH_DATABASE_URL"))?;
    println!(
        "\n[3] raw KNN query rate: {} tasks on a warmed sqlx pool of {} (min = max), \
         gad_workers::jobs::geo::nearest::query k={K}, {}s",
        args.knn_tasks, args.knn_pool, args.knn_duration_s
    );
    let settings = PostgresSettings {
        url,
        pool_size: args.knn_pool,
        ..PostgresSettings::default()
    };
    let pool = gad_shared::db::connect(&settings, settings.knn_timeout).await?;
    gad_shared::db::warm(&pool, args.knn_pool, settings.statement_timeout)
        .await
        .context("warming the pool")?;
    // A short unmeasured warm-up of the index pages.
    let end_warm = Instant::now() + Duration::from_secs(1);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    while Instant::now() < end_warm {
        let p = random_params(&mut rng);
        nearest::query(&pool, &p).await?;
    }
    let window = Duration::from_secs(args.knn_duration_s);
    let start = Instant::now();
    let end = start + window;
    let cpu_a = cpu_snapshot(&args.cpu_pids, args.bench_db());
    let mut tasks = Vec::new();
    for i in 0..args.knn_tasks {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = ChaCha8Rng::seed_from_u64(10_000 + i as u64);
            let mut hist = histogram()?;
            let (mut n, mut errors, mut empty) = (0u64, 0u64, 0u64);
            while Instant::now() < end {
                let p = random_params(&mut rng);
                let t = Instant::now();
                match nearest::query(&pool, &p).await {
                    Ok(items) => {
                        hist.saturating_record(t.elapsed().as_micros() as u64);
                        n += 1;
                        if items.is_empty() {
                            empty += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            anyhow::Ok((n, errors, empty, hist))
        }));
    }
    let mut hist = histogram()?;
    let (mut n, mut errors, mut empty) = (0, 0, 0);
    for t in tasks {
        let (a, b, c, h) = t.await??;
        n += a;
        errors += b;
        empty += c;
        hist.add(&h).map_err(|e| anyhow!("histogram: {e}"))?;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_b = cpu_snapshot(&args.cpu_pids, args.bench_db());
    pool.close().await;
    let r = Phase3 {
        queries: n,
        rate: n as f64 / secs,
        errors,
        empty,
        p50_us: hist.value_at_quantile(0.50),
        p99_us: hist.value_at_quantile(0.99),
        other_cpu: cpu_report(&cpu_a, &cpu_b).1,
        cpu: cpu_line(&cpu_a, &cpu_b),
    };
    let per_query = cpu_per_unit(&cpu_a, &cpu_b, n, "query");
    println!(
        "    {} queries = {}/s; p50 {:.2} ms, p99 {:.2} ms; errors {}, empty results {}",
        r.queries,
        thousands(r.rate),
        ms(r.p50_us),
        ms(r.p99_us),
        r.errors,
        r.empty
    );
    println!("    {}", r.cpu);
    println!("    {per_query}");
    Ok(r)
}

fn random_params(rng: &mut ChaCha8Rng) -> nearest::Params {
    nearest::Params {
        lat: rng.random_range(LAT.0..LAT.1),
        lng: rng.random_range(LNG.0..LNG.1),
        k: K,
        radius_m: None,
    }
}

// ------------------------------------------------------------------ main

async fn cleanup(args: &Args) -> anyhow::Result<()> {
    if args.stream_prefix.is_empty() {
        bail!("refusing to clean up without a stream prefix (that would delete the dev system's streams)");
    }
    let settings = NatsSettings {
        url: args.nats_url.clone(),
        stream_prefix: args.stream_prefix.clone(),
        subject_prefix: args.subject_prefix.clone(),
        ..NatsSettings::default()
    };
    let (_client, js) = gad_shared::topology::connect(&settings).await?;
    Topology::new(&settings).remove(&js).await;
    println!("deleted the {}* streams and buckets", args.stream_prefix);
    Ok(())
}

async fn cleanup_rabbitmq(args: &Args) -> anyhow::Result<()> {
    if args.stream_prefix.is_empty() {
        bail!("refusing to clean up without a stream prefix (that would delete the dev system's queues)");
    }
    queue::delete_rabbitmq(&args.amqp_url, &args.stream_prefix, &args.subject_prefix).await?;
    println!(
        "deleted the {}GAD_JOBS* RabbitMQ queues and exchanges at {}",
        args.stream_prefix,
        without_password(&args.amqp_url)
    );
    Ok(())
}

/// `amqp://host:port/vhost`: a URL as it may be printed.
fn without_password(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://{}", &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Which broker carries the jobs, for the figures' headings.
fn queue_line(args: &Args) -> String {
    match args.queue {
        QueueKind::Jetstream => format!("NATS JetStream ({}GAD_JOBS)", args.stream_prefix),
        QueueKind::Rabbitmq => format!(
            "RabbitMQ at {} (quorum queue {}GAD_JOBS.{}); events, status and DLQ on NATS",
            without_password(&args.amqp_url),
            args.stream_prefix,
            args.consumer
        ),
    }
}

fn check(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.cleanup && args.cleanup_rabbitmq {
        bail!("--cleanup and --cleanup-rabbitmq: one at a time");
    }
    if args.cleanup {
        return cleanup(&args).await;
    }
    if args.cleanup_rabbitmq {
        return cleanup_rabbitmq(&args).await;
    }
    let tokens: Vec<String> = match &args.tokens_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
        None => vec![
            args.token
                .clone()
                .ok_or_else(|| anyhow!("--token / BENCH_TOKEN is required"))?,
        ],
    };
    if tokens.is_empty() {
        bail!("no tokens in --tokens-file");
    }
    println!("callers: {} distinct usuarios, used in turn", tokens.len());
    let target = Arc::new(Target::new(&args.ingress_url, &tokens)?);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "GAD pipeline benchmark: ingress {}, NATS {} (prefix {}), {cores} cores shared by servers and load generator",
        args.ingress_url, args.nats_url, args.stream_prefix
    );
    println!("jobs queue: {}", queue_line(&args));
    let access = QueueAccess::new(
        args.queue,
        &args.nats_url,
        &args.amqp_url,
        &args.stream_prefix,
        &args.subject_prefix,
        args.database_url.as_deref(),
    )
    .await?;

    // Fail early on a wrong token, a stopped ingress or workers that do not answer.
    if !args.no_probe {
        let mut s = target.connect().await.context("connecting to ingress")?;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let w = HeaderValue::from_static("wait=5");
        let (status, body) = exchange(&mut s, target.nearest(&mut rng, Some(&w))?).await?;
        if status != StatusCode::OK {
            bail!(
                "probe request answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
        }
    }

    let p1 = if args.phases.contains(&1) {
        let mark = access.mark().await?;
        let r = phase1(&args, target.clone(), args.clients).await?;
        let d = drain_or_report(&args, &access, mark, r.published).await;
        Some((r, d))
    } else {
        None
    };
    let p2 = if args.phases.contains(&2) {
        Some(phase2(&args, target.clone()).await?)
    } else {
        None
    };
    let p3 = if args.phases.contains(&3) {
        Some(phase3(&args).await?)
    } else {
        None
    };

    let p4 = if args.phases.contains(&4) {
        Some(
            raw_publish::run(
                &args.nats_url,
                &args.stream_prefix,
                &args.subject_prefix,
                args.raw_publish_s,
            )
            .await?,
        )
    } else {
        None
    };
    // With the jobs on RabbitMQ, phase 1 is read against RabbitMQ's own ceiling.
    let p4_rabbit = if args.phases.contains(&4) && args.queue == QueueKind::Rabbitmq {
        Some(
            raw_publish::run_rabbitmq(
                &args.amqp_url,
                &queue::raw_publish_queue(&args.stream_prefix),
                args.raw_publish_s,
            )
            .await?,
        )
    } else {
        None
    };
    let p5 = if args.phases.contains(&5) {
        let ingress_pid = args.cpu_pids.iter().find(|(n, _)| n == "ingress").map(|(_, p)| *p);
        let rss_before = ingress_pid.and_then(rss_kib);
        let mark = access.mark().await?;
        println!(
            "\n[5] overload: {} clients, twice ingress' hard concurrency limit",
            args.overload_clients
        );
        let r = phase1(&args, target.clone(), args.overload_clients).await?;
        let rss_after = ingress_pid.and_then(rss_kib);
        let d = drain_or_report(&args, &access, mark, r.published).await;
        Some((r, d, rss_before, rss_after))
    } else {
        None
    };

    access.close().await;

    println!(
        "\n===== GAD pipeline bench: summary ({cores} cores, loopback, release; load generator on the same cores) ====="
    );
    println!("jobs queue: {}", queue_line(&args));
    if let Some((r, d)) = &p1 {
        let non202: u64 = r.other.values().sum();
        println!(
            "accepted jobs/s ({}; {} closed-loop keep-alive clients, raw hyper, {}s): {}/s  p50 {:.1} ms p99 {:.1} ms  \
             non-202 {non202} transport errors {}  [target ≥ 10,000: {}]",
            args.queue.accepted_means(),
            args.clients,
            args.duration_s,
            thousands(r.rate),
            ms(r.p50_us),
            ms(r.p99_us),
            r.transport_errors,
            check(r.rate >= 10_000.0)
        );
        if d.purged {
            println!("  backlog {} not drained in {:.0} s: purged", d.backlog, d.secs);
        } else {
            println!(
                "  backlog drain (geo workers, full job pipeline, jobs on {}): {} jobs in {:.1} s = {}/s",
                args.queue.label(),
                d.backlog,
                d.secs,
                thousands(d.backlog as f64 / d.secs.max(1e-3))
            );
        }
        if d.unfinished > 0 {
            println!(
                "  WARNING: {} accepted jobs never finished (no terminal jobs row, none waiting)",
                d.unfinished
            );
        }
        println!("  {}", r.cpu);
    }
    if let Some(r) = &p2 {
        println!(
            "e2e nearest latency (jobs on {}, open loop {}/s, Prefer wait={}, from scheduled send): p50 {:.1} p90 {:.1} p99 {:.1} max {:.1} ms  \
             achieved {:.0}/s  timeouts {} errors {}  [target p99 ≤ 50 ms: {}]",
            args.queue.label(),
            args.rate,
            args.wait_s,
            ms(r.p50_us),
            ms(r.p90_us),
            ms(r.p99_us),
            ms(r.max_us),
            r.rate,
            r.timeouts,
            fmt_errors(&r.errors),
            check(r.p99_us <= 50_000 && r.timeouts == 0 && r.errors.is_empty() && r.empty == 0)
        );
        println!("  {}", r.cpu);
    }
    if let Some(r) = &p3 {
        println!(
            "raw KNN (nearest::query, {} tasks, pool {}, {}s): {} q/s  p50 {:.2} ms p99 {:.2} ms  errors {}",
            args.knn_tasks,
            args.knn_pool,
            args.knn_duration_s,
            thousands(r.rate),
            ms(r.p50_us),
            ms(r.p99_us),
            r.errors
        );
    }
    if let Some(r) = &p4 {
        println!(
            "raw JetStream async publish (256 in flight, same server, same run): {}/s  errors {}",
            thousands(r.rate),
            r.errors
        );
    }
    if let Some(r) = &p4_rabbit {
        println!(
            "raw RabbitMQ confirmed publish (256 in flight, persistent, quorum queue, same broker, same run): {}/s  errors {}",
            thousands(r.rate),
            r.errors
        );
    }
    if let Some((r, d, before, after)) = &p5 {
        let refused = r.other.get(&503).copied().unwrap_or(0);
        let answered = r.accepted + r.other.values().sum::<u64>();
        println!(
            "overload ({} clients): accepted {}/s  p99 of accepted {:.1} ms [target ≤ 100 ms: {}]  503 share {:.1}%               other non-202 {}  ingress RSS {} → {} MiB",
            args.overload_clients,
            thousands(r.rate),
            ms(r.p99_us),
            check(r.p99_us <= 100_000),
            refused as f64 / answered.max(1) as f64 * 100.0,
            answered - r.accepted - refused,
            before.map_or("?".into(), |k| format!("{:.0}", k as f64 / 1024.0)),
            after.map_or("?".into(), |k| format!("{:.0}", k as f64 / 1024.0)),
        );
        if d.unfinished > 0 {
            println!(
                "  WARNING: {} accepted jobs never finished (no terminal jobs row, none waiting)",
                d.unfinished
            );
        }
    }
    let mut ratios = Vec::new();
    if let Some(r3) = &p3 {
        ratios.push(format!(
            "e2e rate {}/s = {:.0}% of raw KNN capacity",
            args.rate,
            args.rate as f64 / r3.rate * 100.0
        ));
        if let Some((_, d)) = &p1
            && !d.purged
        {
            ratios.push(format!(
                "worker drain = {:.0}% of raw KNN",
                d.backlog as f64 / d.secs.max(1e-3) / r3.rate * 100.0
            ));
        }
    }
    if let Some((r1, _)) = &p1 {
        let ceiling = match args.queue {
            QueueKind::Jetstream => args.publish_ceiling,
            QueueKind::Rabbitmq => args.rabbit_publish_ceiling,
        };
        ratios.push(format!(
            "accepted/s = {:.1}% of the {}/s {} publish ceiling (platform.md)",
            r1.rate / ceiling * 100.0,
            thousands(ceiling),
            args.queue.label()
        ));
    }
    let raw = match args.queue {
        QueueKind::Jetstream => p4.as_ref().map(|r| ("JetStream async-publish", r)),
        QueueKind::Rabbitmq => p4_rabbit.as_ref().map(|r| ("RabbitMQ confirmed-publish", r)),
    };
    if let (Some((r1, _)), Some((what, r4))) = (&p1, raw) {
        ratios.push(format!(
            "accepted/s = {:.1}% of the raw {what} rate measured in this run",
            r1.rate / r4.rate.max(1.0) * 100.0
        ));
    }
    if !ratios.is_empty() {
        println!("ratios: {}", ratios.join("; "));
    }
    let others = [
        ("1", p1.as_ref().map(|(r, _)| r.other_cpu)),
        ("2", p2.as_ref().map(|r| r.other_cpu)),
        ("3", p3.as_ref().map(|r| r.other_cpu)),
    ];
    let noisy: Vec<String> = others
        .iter()
        .filter_map(|(n, o)| o.filter(|o| *o > 20.0).map(|o| format!("phase {n}: {o:.0}%")))
        .collect();
    if !noisy.is_empty() {
        println!(
            "WARNING: other work on the machine took CPU during the run ({}, % of one core): \
             these figures understate the system",
            noisy.join(", ")
        );
    }
    Ok(())
}
