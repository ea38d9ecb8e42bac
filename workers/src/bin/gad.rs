//! `gad`: operator commands (migrate, seed, token, dlq, import) against the
//! configured PostgreSQL and NATS, with the same settings as the workers.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use gad_shared::auth::TokenIssuer;
use gad_shared::dlq::{Actor, DlqEntry, DlqId, DlqOps, ListQuery};
use gad_shared::{db, settings, topology};
use gad_workers::WorkersSettings;
use gad_workers::import::{self, Format, ImportKind, ImportOptions, Target};
use gad_workers::seed::{self, Profile, SeedOptions};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

// As the services: `gad import` allocates per row, and glibc malloc was a
// fifth of its profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "gad", about = "GAD operator commands")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations.
    Migrate,
    /// Load deterministic demo (`dev`) or benchmark (`bench`) data; replaces earlier seed rows only.
    Seed {
        #[arg(long, default_value = "dev")]
        profile: Profile,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Password of every seeded usuario; generated and printed when absent.
        #[arg(long, env = "GAD_SEED_PASSWORD")]
        password: Option<String>,
    },
    /// Print an access token for an existing usuario (local use and tests).
    Token {
        #[arg(long, conflicts_with_all = ["user_id", "supervisors"])]
        email: Option<String>,
        #[arg(long, conflicts_with = "supervisors")]
        user_id: Option<i64>,
        /// One token per line for the first N active usuarios of nivel ≥ 2
        /// (benchmarks that need many distinct callers).
        #[arg(long)]
        supervisors: Option<i64>,
    },
    /// Operate the dead-letter queue (the same rules as `/api/v1/admin/dlq`).
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Publish the rows of a CSV or NDJSON file as import jobs (README "gad import").
    Import(ImportArgs),
}

#[derive(clap::Args)]
struct ImportArgs {
    #[arg(long)]
    kind: ImportKind,
    /// Default: from the extension (.csv; .ndjson, .jsonl, .json).
    #[arg(long)]
    format: Option<Format>,
    file: PathBuf,
    /// Rejected rows, one JSON object per line. Default: FILE.rejects.ndjson.
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// Resume from (and keep) this checkpoint file.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Rows awaiting their acknowledgement at once.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    in_flight: u32,
    /// Rows between two checkpoint writes.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_every: u64,
    /// Print the summary as one JSON object.
    #[arg(long)]
    summary_json: bool,
    /// Also write each job's `queued` status (as ingress does); halves the rate.
    #[arg(long)]
    queued_status: bool,
}

#[derive(Subcommand)]
enum DlqAction {
    /// Records in stream order, one JSON object per line.
    List {
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 0)]
        skip: u64,
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Requeue a dead job (job id, or the record's sequence) with a fresh attempt budget.
    Replay {
        id: String,
        /// The usuario recorded as actor in the audit row; none = the system.
        #[arg(long)]
        actor: Option<i64>,
    },
    /// Mark a dead job cancelled ("discarded") and drop its records.
    Discard {
        id: String,
        #[arg(long)]
        actor: Option<i64>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings: WorkersSettings = settings::load("workers").context("loading settings")?;
    match cli.command {
        Command::Migrate => {
            let pool = database(&settings).await?;
            db::migrate(&pool).await.context("applying migrations")?;
            println!("migrations applied");
        }
        Command::Seed {
            profile,
            seed,
            password,
        } => {
            let pool = database(&settings).await?;
            db::migrate(&pool).await.context("applying migrations")?;
            let report = seed::run(
                &pool,
                settings.environment.as_str(),
                SeedOptions {
                    profile,
                    seed,
                    password,
                },
            )
            .await
            .context("seeding")?;
            println!(
                "seeded {profile}: {} usuarios, {} efectivos, {} tareas, {} asignaciones, {} historial rows in {:.1} s",
                report.usuarios,
                report.efectivos,
                report.tareas,
                report.asignaciones,
                report.historial,
                report.elapsed.as_secs_f64()
            );
            if let Some(p) = report.password {
                println!("password of every seeded usuario (shown once): {p}");
            }
        }
        Command::Token {
            email,
            user_id,
            supervisors,
        } => {
            settings::check_jwt_secret(&settings.auth)?;
            let pool = database(&settings).await?;
            let rows: Vec<(i64, i16)> = match (email, user_id, supervisors) {
                (Some(e), _, _) => {
                    sqlx::query_as(
                        "SELECT id, nivel FROM usuarios WHERE lower(email) = lower($1) AND deleted_at IS NULL",
                    )
                    .bind(e)
                    .fetch_all(&pool)
                    .await?
                }
                (None, Some(id), _) => {
                    sqlx::query_as("SELECT id, nivel FROM usuarios WHERE id = $1 AND deleted_at IS NULL")
                        .bind(id)
                        .fetch_all(&pool)
                        .await?
                }
                (None, None, Some(n)) => {
                    let rows: Vec<(i64, i16)> = sqlx::query_as(
                        "SELECT id, nivel FROM usuarios WHERE nivel >= 2 AND deleted_at IS NULL ORDER BY id LIMIT $1",
                    )
                    .bind(n)
                    .fetch_all(&pool)
                    .await?;
                    if (rows.len() as i64) < n {
                        bail!("only {} active usuarios of nivel >= 2, not {n}", rows.len());
                    }
                    rows
                }
                (None, None, None) => bail!("give --email, --user-id or --supervisors"),
            };
            if rows.is_empty() {
                bail!("no such active usuario");
            }
            let issuer = TokenIssuer::new(&settings.auth);
            for (id, nivel) in rows {
                let (token, _) = issuer.issue(id, nivel as u8).map_err(|e| anyhow::anyhow!(e))?;
                println!("{token}");
            }
        }
        Command::Dlq { action } => dlq(&settings, database(&settings).await?, action).await?,
        // An import needs NATS only.
        Command::Import(args) => import(&settings, args).await?,
    }
    Ok(())
}

async fn database(settings: &WorkersSettings) -> anyhow::Result<sqlx::PgPool> {
    Ok(db::connect(&settings.postgres, std::time::Duration::from_secs(600)).await?)
}

async fn dlq(settings: &WorkersSettings, pool: sqlx::PgPool, action: DlqAction) -> anyhow::Result<()> {
    let (_client, js) = topology::connect(&settings.nats).await.context("connecting to NATS")?;
    let topology = topology::Topology::new(&settings.nats);
    let status = tokio::time::timeout(
        settings.nats.publish_timeout,
        js.get_key_value(topology.job_status_bucket()),
    )
    .await
    .context("NATS did not answer")?
    .context("binding the job status bucket")?;
    let publisher = gad_shared::queue::Publisher::new(&settings.queue, &settings.nats, js.clone(), "gad dlq");
    let ops = DlqOps {
        db: pool,
        js,
        publisher,
        topology,
        status,
        timeout: settings.nats.publish_timeout,
    };
    let print = |e: &DlqEntry| serde_json::to_string(e).map(|line| println!("{line}"));
    let id = |raw: &str| DlqId::parse(raw).with_context(|| format!("{raw:?} is neither a job id nor a sequence"));
    let actor = |usuario_id| Actor {
        usuario_id,
        user_agent: Some("gad-cli".into()),
        ..Actor::default()
    };
    match action {
        DlqAction::List { kind, skip, limit } => {
            let (entries, total) = ops.list(&ListQuery { kind, skip, limit }).await?;
            for e in &entries {
                print(e)?;
            }
            eprintln!("{} of {total} records", entries.len());
        }
        DlqAction::Replay { id: raw, actor: by } => print(&ops.replay(id(&raw)?, &actor(by)).await?)?,
        DlqAction::Discard { id: raw, actor: by } => print(&ops.discard(id(&raw)?, &actor(by)).await?)?,
    }
    Ok(())
}

/// Exit status of an import stopped by SIGINT or SIGTERM (128 + SIGINT):
/// the checkpoint was saved, and a re-run resumes.
const INTERRUPTED: i32 = 130;

async fn import(settings: &WorkersSettings, args: ImportArgs) -> anyhow::Result<()> {
    let options = ImportOptions {
        kind: args.kind,
        file: args.file,
        format: args.format,
        rejects: args.rejects,
        checkpoint: args.checkpoint,
        in_flight: args.in_flight as usize,
        checkpoint_every: args.checkpoint_every,
        progress: true,
        queued_status: args.queued_status,
    };
    let target = Target::connect(&settings.nats, &settings.queue).await?;
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    // A signal stops the reading; rows in flight are still acknowledged and
    // the checkpoint saved before the run returns.
    let signals = tokio::spawn(async move {
        gad_shared::shutdown::signal().await;
        on_signal.cancel();
    });
    let summary = import::run(&options, &target, &stop).await;
    signals.abort();
    let summary = summary?;
    if args.summary_json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{summary}");
    }
    if summary.interrupted {
        std::process::exit(INTERRUPTED);
    }
    Ok(())
}
