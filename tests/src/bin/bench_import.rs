//! `bench_import` (issue 8 figures): a 1,000,000-row location-update file
//! through `gad import`'s publisher.
//!
//! 1. Generates the file (CSV) for units of its own in a scratch database.
//! 2. Raw: the same messages (envelopes and headers built beforehand, not
//!    timed) async-published to a stream configured like `GAD_JOBS`, with the
//!    same number of acknowledgements in flight: the ceiling.
//! 3. Import: the file through the import publisher (read, check, UUIDv5,
//!    publish with PubAcks, `queued` status), the workers stopped. Printed
//!    beside 2 as a ratio (target ≥ 60 %).
//! 4. End to end: fresh streams, the workers' `import` lane running in this
//!    process, the same file imported; timed until every row's job succeeded.
//!
//! Never part of CI: `deploy/bench_import.sh` runs it against a release build.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream::{self, stream};
use clap::Parser;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use gad_e2e::bench_format::thousands;
use gad_shared::topology::Topology;
use gad_workers::import::source::{Format, Source};
use gad_workers::import::{ImportKind, ImportOptions, Target, rows};
use gad_workers::{Application, WorkersSettings};
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

// The allocator of `gad import`, so the figure is the command's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "bench_import", about = "GAD import publisher and end-to-end throughput")]
struct Args {
    #[arg(long, env = "BENCH_IMPORT_ROWS", default_value_t = 1_000_000)]
    rows: u64,
    /// Efectivos the positions are spread over.
    #[arg(long, env = "BENCH_IMPORT_UNITS", default_value_t = 10_000)]
    units: u32,
    #[arg(long, env = "BENCH_IMPORT_IN_FLIGHT", default_value_t = 512)]
    in_flight: usize,
    /// Concurrency of the import lane in phase 4.
    #[arg(long, env = "BENCH_IMPORT_CONCURRENCY", default_value_t = 64)]
    concurrency: usize,
    /// Scratch database (created and migrated when missing).
    #[arg(long, env = "BENCH_IMPORT_DB", default_value = "gad_bench_import")]
    database: String,
    /// Give up on phase 4 after this long.
    #[arg(long, env = "BENCH_IMPORT_TIMEOUT_S", default_value_t = 1800)]
    timeout_s: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut settings: WorkersSettings = gad_shared::settings::load("workers").context("loading settings")?;
    settings.postgres.url = gad_e2e::database::scratch_database(&settings.postgres.url, &args.database).await?;
    settings.nats.stream_prefix = "BENCHI_".into();
    settings.nats.subject_prefix = "benchi".into();
    settings.nats.jobs_max_bytes = 2 << 30;
    let db = gad_shared::db::connect(&settings.postgres, Duration::from_secs(600)).await?;
    gad_shared::db::migrate(&db)
        .await
        .context("migrating the scratch database")?;
    units(&db, args.units).await?;

    let dir = std::env::temp_dir().join(format!("gad-bench-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("locations.csv");
    let started = Instant::now();
    generate(&file, args.rows, args.units)?;
    let size = std::fs::metadata(&file)?.len();
    println!(
        "bench_import: {} rows ({:.0} MiB) over {} units, generated in {:.1}s; {} acks in flight; NATS {}",
        thousands(args.rows as f64),
        size as f64 / (1 << 20) as f64,
        args.units,
        started.elapsed().as_secs_f64(),
        args.in_flight,
        settings.nats.url
    );
    let result = phases(&args, &settings, &db, &file).await;
    let _ = std::fs::remove_dir_all(&dir);
    let topology = Topology::new(&settings.nats);
    if let Ok((_client, js)) = gad_shared::topology::connect(&settings.nats).await {
        topology.remove(&js).await;
        let _ = js.delete_stream(raw_stream(&settings)).await;
    }
    result
}

async fn phases(args: &Args, settings: &WorkersSettings, db: &sqlx::PgPool, file: &Path) -> anyhow::Result<()> {
    let topology = Topology::new(&settings.nats);
    let (_client, js) = gad_shared::topology::connect(&settings.nats).await?;
    topology.remove(&js).await;
    topology.ensure(&js, Duration::from_secs(3600)).await?;

    let raw = raw_rate(args, settings, &js, &topology, file).await?;
    println!("\n[raw] async publish of the same messages: {} rows/s", thousands(raw));

    let options = ImportOptions {
        kind: ImportKind::Locations,
        file: file.to_path_buf(),
        format: Some(Format::Csv),
        rejects: Some(file.with_extension("rejects.ndjson")),
        checkpoint: None,
        in_flight: args.in_flight,
        checkpoint_every: 100_000,
        progress: false,
        // As `gad import` runs by default: one JetStream write per row, as in the raw run.
        queued_status: false,
    };
    let target = Target::connect(&settings.nats, &settings.queue).await?;
    let summary = gad_workers::import::run(&options, &target, &CancellationToken::new()).await?;
    let rate = summary.acked_per_second();
    println!(
        "[import] published with acknowledgements: {} rows/s ({} published, {} duplicates, {} rejected) = {:.0} % of raw (target ≥ 60 %: {})",
        thousands(rate),
        summary.published,
        summary.duplicates,
        summary.rejected,
        100.0 * rate / raw,
        if rate >= 0.6 * raw { "PASS" } else { "MISS" }
    );
    if summary.published != args.rows {
        bail!("{} of {} rows published", summary.published, args.rows);
    }

    // End to end: fresh streams, the import lane running while the file is read.
    topology.remove(&js).await;
    sqlx::query("DELETE FROM jobs WHERE kind = 'import.locations'")
        .execute(db)
        .await?;
    let mut lane = settings.clone();
    let w = &mut lane.workers;
    w.groups = vec!["import".into()];
    w.health_bind = ([127, 0, 0, 1], 0).into();
    w.metrics_bind = None;
    w.migrate_on_start = false;
    w.default_group.concurrency = args.concurrency;
    w.default_group.max_ack_pending = 8 * args.concurrency as i64;
    let app = Application::build(lane).await.context("building the workers")?;
    let shutdown = CancellationToken::new();
    let workers = tokio::spawn(app.run_until(shutdown.clone()));
    let target = Target::connect(&settings.nats, &settings.queue).await?;
    let started = Instant::now();
    let summary = gad_workers::import::run(&options, &target, &CancellationToken::new()).await?;
    let published_in = started.elapsed();
    let applied = wait_applied(db, args.rows, Duration::from_secs(args.timeout_s)).await;
    let took = started.elapsed();
    shutdown.cancel();
    let _ = workers.await;
    let applied = applied?;
    if applied < args.rows {
        // The rate so far is still a figure; the run says it stopped early.
        println!(
            "[end to end] stopped at BENCH_IMPORT_TIMEOUT_S: {} of {} rows applied in {:.1}s = {} rows/s (published in {:.1}s)",
            thousands(applied as f64),
            thousands(args.rows as f64),
            took.as_secs_f64(),
            thousands(applied as f64 / took.as_secs_f64()),
            published_in.as_secs_f64(),
        );
        return Ok(());
    }
    println!(
        "[end to end] {} rows applied in {:.1}s = {} rows/s (published in {:.1}s = {} rows/s with the workers running; {} succeeded)",
        thousands(args.rows as f64),
        took.as_secs_f64(),
        thousands(args.rows as f64 / took.as_secs_f64()),
        published_in.as_secs_f64(),
        thousands(summary.acked_per_second()),
        args.rows
    );
    Ok(())
}

fn raw_stream(settings: &WorkersSettings) -> String {
    format!("{}RAW_IMPORT", settings.nats.stream_prefix)
}

/// Phase 2: the prepared messages published as fast as JetStream takes them.
async fn raw_rate(
    args: &Args,
    settings: &WorkersSettings,
    js: &jetstream::Context,
    topology: &Topology,
    file: &Path,
) -> anyhow::Result<f64> {
    let name = raw_stream(settings);
    let subject = format!("{}.raw.import", settings.nats.subject_prefix);
    let _ = js.delete_stream(&name).await;
    // As GAD_JOBS is: work queue, file storage, the same duplicate window.
    js.create_stream(stream::Config {
        name: name.clone(),
        subjects: vec![subject.clone()],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        max_bytes: 2 << 30,
        ..Default::default()
    })
    .await
    .context("creating the raw stream")?;
    let planning = Instant::now();
    let mut source = Source::open(file, Format::Csv, ImportKind::Locations)?;
    let mut messages = Vec::with_capacity(args.rows as usize);
    while let Some(row) = source.next_row()? {
        let job = rows::plan(ImportKind::Locations, topology, row, false).map_err(|r| anyhow::anyhow!("{r:?}"))?;
        messages.push(job.message());
    }
    // What reading and checking costs alone, on one core: the import's
    // share of the machine beside what NATS needs.
    println!(
        "[plan] read, check and encode alone: {} rows/s",
        thousands(args.rows as f64 / planning.elapsed().as_secs_f64())
    );
    let started = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    for message in messages {
        if in_flight.len() >= args.in_flight
            && let Some(ack) = in_flight.next().await
        {
            ack?;
        }
        let ack = js.send_publish(subject.clone(), message).await?;
        in_flight.push(ack.into_future());
    }
    while let Some(ack) = in_flight.next().await {
        ack?;
    }
    let rate = args.rows as f64 / started.elapsed().as_secs_f64();
    let _ = js.delete_stream(&name).await;
    Ok(rate)
}

/// `n` rows: positions around Buenos Aires, units in turn, `recorded_at` rising to just now.
fn generate(file: &Path, n: u64, units: u32) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(file)?);
    writeln!(out, "codigo_interno,lat,lng,accuracy_m,recorded_at")?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    let start = chrono::Utc::now() - chrono::Duration::milliseconds(n as i64 + 60_000);
    for i in 0..n {
        let at = start + chrono::Duration::milliseconds(i as i64);
        let (lat, lng): (f64, f64) = (rng.random_range(-34.75..-34.5), rng.random_range(-58.55..-58.3));
        writeln!(
            out,
            "BI-{:06},{lat:.6},{lng:.6},{},{}",
            i % u64::from(units) + 1,
            rng.random_range(3..50),
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Units `BI-000001`… with usuarios of their own (created once).
async fn units(db: &sqlx::PgPool, n: u32) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO usuarios (dni, nombre, apellido, email, hashed_password, verificado)
         SELECT 'BI' || lpad(g::text, 8, '0'), 'Bench', 'Import', 'bench-import-' || g || '@bench.invalid', 'x', true
         FROM generate_series(1, $1) g
         ON CONFLICT DO NOTHING",
    )
    .bind(n as i32)
    .execute(db)
    .await?;
    sqlx::query(
        "INSERT INTO efectivos (usuario_id, codigo_interno)
         SELECT u.id, 'BI-' || lpad(substr(u.dni, 3)::int::text, 6, '0') FROM usuarios u
         WHERE u.email LIKE 'bench-import-%@bench.invalid'
         ON CONFLICT DO NOTHING",
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Rows applied: all `n`, or as many as were by `within`.
async fn wait_applied(db: &sqlx::PgPool, n: u64, within: Duration) -> anyhow::Result<u64> {
    let deadline = Instant::now() + within;
    loop {
        let done: i64 =
            sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'import.locations' AND status = 'succeeded'")
                .fetch_one(db)
                .await?;
        let done = u64::try_from(done)?;
        if done >= n || Instant::now() > deadline {
            return Ok(done);
        }
        // A count scans the jobs table, which grows to `n` rows: asked often,
        // it took a good part of PostgreSQL from the workers it measures.
        tokio::time::sleep(APPLIED_POLL).await;
    }
}

const APPLIED_POLL: Duration = Duration::from_secs(5);
