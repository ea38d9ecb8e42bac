//! `bench_workers`: no-op job throughput through the workers (issue 4), the
//! framework's own cost with nothing in the handler: pull, the `jobs` row
//! (group-committed), the status bucket and `job_updated` event, the ack.
//!
//! For each concurrency: builds the workers in this process with only the
//! `import` group (which binds its consumer on a fresh stream prefix), fills
//! the queue with `--jobs` `import.noop` jobs, starts the group and times
//! until the consumer has nothing pending or unacknowledged; then counts the
//! `succeeded` rows in SQL. Never part of CI: `deploy/bench_workers.sh` runs it
//! against a release build.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::HeaderMap;
use async_nats::jetstream;
use chrono::Utc;
use clap::Parser;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use gad_shared::envelope::{self, CONTENT_TYPE_MSGPACK, ENVELOPE_VERSION, JobEnvelope, headers};
use gad_shared::job::kind_spec;
use gad_shared::topology::Topology;
use gad_workers::{Application, WorkersSettings};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

// The workers' own allocator (workers/src/main.rs): this runs them in-process.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "bench_workers", about = "GAD no-op job throughput through the workers")]
struct Args {
    /// Jobs per round.
    #[arg(long, env = "BENCH_JOBS", default_value_t = 100_000)]
    jobs: usize,
    /// Concurrency (semaphore per process) of each round.
    #[arg(long, env = "BENCH_CONCURRENCY", default_value = "32,64,128", value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// `max_ack_pending` of the group's consumer; 0 = 8 × concurrency.
    #[arg(long, env = "BENCH_MAX_ACK_PENDING", default_value_t = 0)]
    max_ack_pending: i64,
    /// Scratch database (created and migrated when missing; its noop rows are deleted).
    #[arg(long, env = "BENCH_WORKERS_DB", default_value = "gad_bench_workers")]
    database: String,
    /// Give up on a round after this long.
    #[arg(long, env = "BENCH_ROUND_TIMEOUT_S", default_value_t = 300)]
    round_timeout_s: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The services' own configuration (GAD_* environment, GAD_CONFIG file).
    let base: WorkersSettings = gad_shared::settings::load("workers").context("loading settings")?;
    let url = gad_e2e::database::scratch_database(&base.postgres.url, &args.database).await?;
    println!(
        "bench_workers: {} import.noop jobs per round, concurrency {:?}, NATS {}, database {}",
        args.jobs, args.concurrency, base.nats.url, args.database
    );
    let mut results = Vec::new();
    for (round, &concurrency) in args.concurrency.iter().enumerate() {
        let mut settings = base.clone();
        settings.postgres.url = url.clone();
        settings.nats.stream_prefix = format!("BENCHW{round}_");
        settings.nats.subject_prefix = format!("benchw{round}");
        let w = &mut settings.workers;
        w.groups = vec!["import".into()];
        w.health_bind = ([127, 0, 0, 1], 0).into();
        w.metrics_bind = None;
        w.default_group.concurrency = concurrency;
        w.default_group.max_ack_pending = if args.max_ack_pending > 0 {
            args.max_ack_pending
        } else {
            8 * concurrency as i64
        };
        let rate = round_at(&args, settings).await?;
        results.push((concurrency, rate));
    }
    println!("\n== no-op job throughput through the workers (target ≥ 10,000 jobs/s)");
    for (concurrency, rate) in results {
        let verdict = if rate >= 10_000.0 { "PASS" } else { "MISS" };
        println!("   concurrency {concurrency:>4}: {rate:>8.0} jobs/s   {verdict}");
    }
    Ok(())
}

async fn round_at(args: &Args, settings: WorkersSettings) -> anyhow::Result<f64> {
    let concurrency = settings.workers.default_group.concurrency;
    let topology = Topology::new(&settings.nats);
    let (_client, js) = gad_shared::topology::connect(&settings.nats).await?;
    topology.remove(&js).await;
    let db = gad_shared::db::connect(&settings.postgres, settings.postgres.statement_timeout).await?;
    let app = Application::build(settings).await.context("building the workers")?;
    sqlx::query("DELETE FROM jobs WHERE kind = 'import.noop'")
        .execute(&db)
        .await?;

    let published = Instant::now();
    fill(&js, &topology, args.jobs).await?;
    let fill_rate = args.jobs as f64 / published.elapsed().as_secs_f64();

    let shutdown = CancellationToken::new();
    let cpu_before = own_cpu_ms();
    let started = Instant::now();
    let run = tokio::spawn(app.run_until(shutdown.clone()));
    let drained = wait_drained(&js, &topology, Duration::from_secs(args.round_timeout_s)).await;
    let took = started.elapsed();
    let cpu = own_cpu_ms().zip(cpu_before).map(|(a, b)| a.saturating_sub(b));
    shutdown.cancel();
    let _ = run.await;
    drained?;

    let done: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'import.noop' AND status = 'succeeded'")
        .fetch_one(&db)
        .await?;
    sqlx::query("DELETE FROM jobs WHERE kind = 'import.noop'")
        .execute(&db)
        .await?;
    topology.remove(&js).await;
    let rate = done as f64 / took.as_secs_f64();
    println!(
        "\n[concurrency {concurrency}] queue filled at {fill_rate:.0}/s; {done} of {} jobs succeeded in {:.2}s = {rate:.0} jobs/s{}",
        args.jobs,
        took.as_secs_f64(),
        cpu.map(|ms| format!("; workers' CPU {:.3} ms/job", ms as f64 / done.max(1) as f64))
            .unwrap_or_default()
    );
    if done != args.jobs as i64 {
        bail!("{done} rows succeeded for {} jobs", args.jobs);
    }
    Ok(rate)
}

/// Publishes `n` no-op jobs, 512 acknowledgements in flight.
async fn fill(js: &jetstream::Context, topology: &Topology, n: usize) -> anyhow::Result<()> {
    let spec = kind_spec("import.noop").context("import.noop is not a job kind")?;
    let subject = topology.job_subject(spec);
    let mut in_flight = FuturesUnordered::new();
    for _ in 0..n {
        if in_flight.len() >= 512
            && let Some(ack) = in_flight.next().await
        {
            ack?;
        }
        let job = JobEnvelope {
            v: ENVELOPE_VERSION,
            job_id: Uuid::new_v4(),
            kind: spec.name.into(),
            submitted_by: None,
            submitted_at: Utc::now(),
            request_id: None,
            client: None,
            payload: serde_json::json!({}),
        };
        let mut h = HeaderMap::new();
        h.insert(headers::CONTENT_TYPE, CONTENT_TYPE_MSGPACK);
        h.insert(headers::MSG_ID, job.job_id.to_string().as_str());
        let ack = js
            .publish_with_headers(subject.clone(), h, envelope::encode(&job)?)
            .await
            .context("publishing a job")?;
        in_flight.push(ack.into_future());
    }
    while let Some(ack) = in_flight.next().await {
        ack?;
    }
    Ok(())
}

async fn wait_drained(js: &jetstream::Context, topology: &Topology, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    let stream = js.get_stream(topology.jobs_stream()).await?;
    loop {
        // One request per poll: the consumer's info straight from the stream.
        let info = stream
            .consumer_info("import")
            .await
            .map_err(|e| anyhow::anyhow!("consumer info: {e}"))?;
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "not drained within {within:?}: {} pending, {} unacknowledged",
                info.num_pending,
                info.num_ack_pending
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// CPU time this process used so far (user + system), from /proc.
fn own_cpu_ms() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(ticks * 10)
}
