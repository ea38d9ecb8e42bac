//! `bench_domain`: the domain's figures (issue 3), against release binaries
//! started by `deploy/bench.sh BENCH_TOOL=bench_domain` (never part of CI).
//!
//! 1. Emergency dispatches/s: N closed-loop submitters, `POST
//!    /api/v1/tasks/emergency` in its default wait mode at random points;
//!    afterwards SQL checks that no unit holds two emergencies.
//! 2. Mixed workload, open loop at rising rates: 70 % direct reads, 20 % task
//!    writes and transitions, 10 % nearest; per-endpoint p50/p99 from each
//!    request's scheduled send time, and the highest rate whose p99 stays
//!    within the target.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Parser;
use hdrhistogram::Histogram;
use rand::Rng;

#[path = "bench_domain/emergency.rs"]
mod emergency;
#[path = "bench_domain/mixed.rs"]
mod mixed;

/// Buenos Aires box of the seeded efectivos.
pub const LAT: (f64, f64) = (-34.705, -34.527);
pub const LNG: (f64, f64) = (-58.531, -58.335);

#[derive(Parser, Debug)]
#[command(name = "bench_domain", about = "GAD domain benchmark (run by deploy/bench.sh)")]
pub struct Args {
    #[arg(long, env = "BENCH_INGRESS_URL", default_value = "http://127.0.0.1:18080")]
    pub ingress_url: String,
    /// A nivel ≥ 2 token.
    #[arg(long, env = "BENCH_TOKEN", hide_env_values = true)]
    pub token: String,
    #[arg(long, env = "BENCH_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Phases: 1 emergency, 2 mixed.
    #[arg(long, env = "BENCH_PHASES", default_value = "1,2", value_delimiter = ',')]
    pub phases: Vec<u8>,
    /// Measured seconds of phase 1 and of each rate of phase 2.
    #[arg(long, env = "BENCH_DURATION_S", default_value_t = 15)]
    pub duration_s: u64,
    #[arg(long, env = "BENCH_EMERGENCY_CLIENTS", default_value_t = 32)]
    pub emergency_clients: usize,
    /// Phase 2 rates, requests/s, tried in order until p99 exceeds the target.
    #[arg(
        long,
        env = "BENCH_MIXED_RATES",
        default_value = "250,500,750,1000,1500,2000,3000",
        value_delimiter = ','
    )]
    pub mixed_rates: Vec<u64>,
    #[arg(long, env = "BENCH_MIXED_P99_MS", default_value_t = 50.0)]
    pub mixed_p99_ms: f64,
    /// Requests of phase 2 outstanding at once; past it a request counts as refused.
    #[arg(long, env = "BENCH_MIXED_MAX_OUTSTANDING", default_value_t = 4096)]
    pub mixed_max_outstanding: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .pool_max_idle_per_host(4096)
        .build()?;
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&args.database_url)
        .await
        .context("connecting to the bench database")?;
    let mut out = Vec::new();
    if args.phases.contains(&1) {
        out.push(emergency::run(&args, &http, &db).await?);
    }
    if args.phases.contains(&2) {
        out.push(mixed::run(&args, &http, &db).await?);
    }
    println!("\n== summary");
    for line in out {
        println!("{line}");
    }
    Ok(())
}

pub fn random_point(rng: &mut impl Rng) -> (f64, f64) {
    (rng.random_range(LAT.0..LAT.1), rng.random_range(LNG.0..LNG.1))
}

pub fn url(args: &Args, path: &str) -> String {
    format!("{}{path}", args.ingress_url.trim_end_matches('/'))
}

pub use gad_e2e::bench_format::ms;

/// Latencies and answers per endpoint label.
pub struct Recorder {
    empty: Histogram<u64>,
    inner: Mutex<BTreeMap<&'static str, Endpoint>>,
}

pub struct Endpoint {
    pub latency_us: Histogram<u64>,
    /// Answers by status ("timeout", "refused" for local failures).
    pub answers: BTreeMap<String, u64>,
}

impl Recorder {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            empty: Histogram::new_with_bounds(1, 120_000_000, 3).map_err(|e| anyhow!("{e}"))?,
            inner: Mutex::default(),
        })
    }

    pub fn record(&self, label: &'static str, us: u64, answer: String) {
        let Ok(mut map) = self.inner.lock() else { return };
        let e = map.entry(label).or_insert_with(|| Endpoint {
            latency_us: self.empty.clone(),
            answers: BTreeMap::new(),
        });
        // Past the histogram's 2 minutes: counted at its ceiling.
        e.latency_us.saturating_record(us.max(1));
        *e.answers.entry(answer).or_default() += 1;
    }

    pub fn take(&self) -> BTreeMap<&'static str, Endpoint> {
        self.inner
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default()
    }

    pub fn empty(&self) -> Histogram<u64> {
        self.empty.clone()
    }
}

pub fn all_latencies(recorder: &Recorder, map: &BTreeMap<&'static str, Endpoint>) -> anyhow::Result<Histogram<u64>> {
    let mut all = recorder.empty();
    for e in map.values() {
        all.add(&e.latency_us).map_err(|e| anyhow!("{e}"))?;
    }
    Ok(all)
}

pub fn answers_line(answers: &BTreeMap<String, u64>) -> String {
    answers
        .iter()
        .map(|(k, v)| format!("{k}×{v}"))
        .collect::<Vec<_>>()
        .join(" ")
}
