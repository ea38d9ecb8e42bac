//! `bench_fanout`: the broadcaster's figures (issue 5), against binaries
//! started by `deploy/bench.sh BENCH_TOOL=bench_fanout` (never part of CI).
//!
//! 3. Idle memory (run first, on a fresh broadcaster, so memory freed by the
//!    other phases cannot be reused and flatter the figure): N idle
//!    connections spread over seeded usuarios; (VmRSS with them − VmRSS
//!    before) / N.
//! 1. Saturation: M clients subscribed to one topic; events published to
//!    `GAD_EVENTS` as fast as they are delivered (a bounded number in flight
//!    end to end); delivered frames/s counted by the clients.
//! 2. Fixed rate: R events/s to the same M clients; publish→receive latency
//!    of every delivery (one clock: publisher and clients are this process).
//!
//! Events are published the way the workers publish them (msgpack envelope,
//! `Gad-Topics` header), each carrying its publish time in `data`. The
//! clients run in this process: on a small machine their CPU competes with
//! the broadcaster's, which is why its own CPU per million deliveries is
//! printed beside each rate.

use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Parser;
use gad_shared::auth::TokenIssuer;
use gad_shared::settings::AuthSettings;
use hdrhistogram::Histogram;

#[path = "bench_fanout/client.rs"]
mod client;
#[path = "bench_fanout/connect.rs"]
mod connect;
#[path = "bench_fanout/fanout.rs"]
mod fanout;
#[path = "bench_fanout/idle.rs"]
mod idle;
#[path = "bench_fanout/procfs.rs"]
mod procfs;
#[path = "bench_fanout/publish.rs"]
mod publish;

/// Targets of issue 5.
pub const TARGET_RATE: f64 = 1_000_000.0;
pub const TARGET_P99_MS: f64 = 50.0;
pub const TARGET_KIB_PER_CONN: f64 = 20.0;

#[derive(Parser, Debug)]
#[command(
    name = "bench_fanout",
    about = "GAD WebSocket fan-out benchmark (run by deploy/bench.sh)"
)]
pub struct Args {
    /// The broadcaster's public address (`/ws/connect`, `/ws/stats`).
    #[arg(long, env = "BENCH_BROADCASTER_ADDR", default_value = "127.0.0.1:18090")]
    pub broadcaster_addr: String,
    /// The broadcaster's pid, for its VmRSS and CPU time (from /proc).
    #[arg(long, env = "BENCH_BROADCASTER_PID")]
    pub broadcaster_pid: Option<u32>,
    /// Seeded database: the usuarios tokens are minted for.
    #[arg(long, env = "BENCH_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// The services' JWT secret (tokens are minted here, as tests do).
    #[arg(long, env = "GAD_AUTH__JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
    #[arg(long, env = "GAD_AUTH__ISSUER")]
    pub jwt_issuer: Option<String>,
    #[arg(long, env = "GAD_NATS__URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    #[arg(long, env = "GAD_NATS__STREAM_PREFIX", default_value = "BENCH_")]
    pub stream_prefix: String,
    #[arg(long, env = "GAD_NATS__SUBJECT_PREFIX", default_value = "bench")]
    pub subject_prefix: String,
    /// Phases: 1 saturation, 2 fixed rate, 3 idle memory (3 runs first).
    #[arg(long, env = "BENCH_PHASES", default_value = "1,2,3", value_delimiter = ',')]
    pub phases: Vec<u8>,
    /// Measured seconds of phases 1 and 2.
    #[arg(long, env = "BENCH_DURATION_S", default_value_t = 10)]
    pub duration_s: u64,
    /// Unmeasured seconds before each of phases 1 and 2.
    #[arg(long, env = "BENCH_WARMUP_S", default_value_t = 2)]
    pub warmup_s: u64,
    /// Phases 1 and 2: subscribed clients (nivel ≥ 2 usuarios, at most 10 each).
    #[arg(long, env = "BENCH_FANOUT_CLIENTS", default_value_t = 1000)]
    pub fanout_clients: usize,
    /// The topic they subscribe to and events are published on.
    #[arg(long, env = "BENCH_FANOUT_TOPIC", default_value = "tasks")]
    pub topic: String,
    /// Phase 1: events published but not yet received by every client, at most.
    #[arg(long, env = "BENCH_FANOUT_WINDOW", default_value_t = 500)]
    pub window: u64,
    /// Publish acknowledgements awaited at once.
    #[arg(long, env = "BENCH_FANOUT_ACKS", default_value_t = 256)]
    pub max_acks: usize,
    /// Phase 2: events per second (each delivered to every client).
    #[arg(long, env = "BENCH_FANOUT_RATE", default_value_t = 200)]
    pub rate: u64,
    /// Padding in each event's `data`, bytes (sets the frame size).
    #[arg(long, env = "BENCH_EVENT_PAD", default_value_t = 256)]
    pub pad_bytes: usize,
    /// Phase 3: idle connections.
    #[arg(long, env = "BENCH_IDLE_CONNECTIONS", default_value_t = 10_000)]
    pub idle_connections: usize,
    /// Phase 3: connections per usuario (the broadcaster allows 10).
    #[arg(long, env = "BENCH_IDLE_PER_USER", default_value_t = 2)]
    pub idle_per_user: usize,
    /// Phase 3: seconds every connection stays open before VmRSS is read (15: one ping each).
    #[arg(long, env = "BENCH_IDLE_SETTLE_S", default_value_t = 15)]
    pub settle_s: u64,
    /// Handshakes in progress at once.
    #[arg(long, env = "BENCH_CONNECT_CONCURRENCY", default_value_t = 200)]
    pub connect_concurrency: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&args.database_url)
        .await
        .context("connecting to the bench database")?;
    let issuer = TokenIssuer::new(&AuthSettings {
        jwt_secret: args.jwt_secret.clone(),
        issuer: args.jwt_issuer.clone(),
        token_ttl: None,
    });
    let stats = idle::StatsProbe::new(&args, &db, &issuer).await?;
    println!(
        "bench_fanout: broadcaster {} (pid {}); clients, publisher and broadcaster share this machine's {} cores",
        args.broadcaster_addr,
        args.broadcaster_pid.map_or("unknown".into(), |p| p.to_string()),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let mut out = Vec::new();
    if args.phases.contains(&3) {
        out.push(idle::run(&args, &db, &issuer, &stats).await?);
    }
    if args.phases.contains(&1) || args.phases.contains(&2) {
        stats.wait_for_connections(0, Duration::from_secs(30)).await;
        out.extend(fanout::run(&args, &db, &issuer).await?);
    }
    db.close().await;
    println!("\n== summary (clients, publisher and broadcaster share the machine: read rates with the CPU figures)");
    for line in out {
        println!("{line}");
    }
    Ok(())
}

/// Tokens for `count` connections over seeded usuarios (nivel ≥ 2 when
/// `supervisors`, else nivel 1), lowest ids first, at least `per_user` per
/// usuario and more when too few usuarios exist (the broadcaster allows 10).
/// Returns the tokens and how many usuarios they belong to.
pub async fn tokens(
    db: &sqlx::PgPool,
    issuer: &TokenIssuer,
    supervisors: bool,
    count: usize,
    per_user: usize,
) -> anyhow::Result<(Vec<String>, usize)> {
    const PER_USER_LIMIT: usize = 10;
    if count == 0 {
        return Ok((Vec::new(), 0));
    }
    let sql = match supervisors {
        true => "SELECT id, nivel FROM usuarios WHERE deleted_at IS NULL AND nivel >= 2 ORDER BY id LIMIT $1",
        false => "SELECT id, nivel FROM usuarios WHERE deleted_at IS NULL AND nivel = 1 ORDER BY id LIMIT $1",
    };
    let rows: Vec<(i64, i16)> = sqlx::query_as(sql)
        .bind(i64::try_from(count.div_ceil(per_user.clamp(1, PER_USER_LIMIT)))?)
        .fetch_all(db)
        .await
        .context("reading seeded usuarios")?;
    if rows.len() * PER_USER_LIMIT < count {
        anyhow::bail!(
            "{count} connections need at least {} usuarios ({}) at {PER_USER_LIMIT} each; the database has {}: \
             reseed with the bench profile or lower the count",
            count.div_ceil(PER_USER_LIMIT),
            if supervisors { "nivel ≥ 2" } else { "nivel 1" },
            rows.len()
        );
    }
    let users = count.div_ceil(count.div_ceil(rows.len().max(1)));
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let (id, nivel) = rows[i % users];
        let nivel = u8::try_from(nivel).with_context(|| format!("nivel {nivel} of usuario {id}"))?;
        let (token, _) = issuer
            .issue(id, nivel)
            .map_err(|e| anyhow!("minting a token for usuario {id}: {e}"))?;
        out.push(token);
    }
    Ok((out, users))
}

/// p50/p99/max etc. of latencies in µs.
pub fn latency_histogram(samples: &[u32]) -> anyhow::Result<Histogram<u64>> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).map_err(|e| anyhow!("histogram: {e}"))?;
    for &us in samples {
        h.saturating_record(u64::from(us).max(1));
    }
    Ok(h)
}

pub use gad_e2e::bench_format::{ms, thousands};

pub fn check(ok: bool) -> &'static str {
    if ok { "✓" } else { "✗" }
}
