//! `gad`: operator commands (migrate, seed, token, dlq) against the
//! configured PostgreSQL and NATS, with the same settings as the workers.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use gad_shared::auth::TokenIssuer;
use gad_shared::dlq::{Actor, DlqEntry, DlqId, DlqOps, ListQuery};
use gad_shared::{db, settings, topology};
use gad_workers::WorkersSettings;
use gad_workers::seed::{self, Profile, SeedOptions};

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
        #[arg(long, conflicts_with = "user_id")]
        email: Option<String>,
        #[arg(long)]
        user_id: Option<i64>,
    },
    /// Operate the dead-letter queue (the same rules as `/api/v1/admin/dlq`).
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
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
    let pool = db::connect(&settings.postgres, std::time::Duration::from_secs(600)).await?;
    match cli.command {
        Command::Migrate => {
            db::migrate(&pool).await.context("applying migrations")?;
            println!("migrations applied");
        }
        Command::Seed {
            profile,
            seed,
            password,
        } => {
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
        Command::Token { email, user_id } => {
            settings::check_jwt_secret(&settings.auth)?;
            let row: Option<(i64, i16)> = match (email, user_id) {
                (Some(e), _) => {
                    sqlx::query_as(
                        "SELECT id, nivel FROM usuarios WHERE lower(email) = lower($1) AND deleted_at IS NULL",
                    )
                    .bind(e)
                    .fetch_optional(&pool)
                    .await?
                }
                (None, Some(id)) => {
                    sqlx::query_as("SELECT id, nivel FROM usuarios WHERE id = $1 AND deleted_at IS NULL")
                        .bind(id)
                        .fetch_optional(&pool)
                        .await?
                }
                (None, None) => bail!("give --email or --user-id"),
            };
            let Some((id, nivel)) = row else {
                bail!("no such active usuario")
            };
            let (token, _) = TokenIssuer::new(&settings.auth)
                .issue(id, nivel as u8)
                .map_err(|e| anyhow::anyhow!(e))?;
            println!("{token}");
        }
        Command::Dlq { action } => dlq(&settings, pool, action).await?,
    }
    Ok(())
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
    let ops = DlqOps {
        db: pool,
        js,
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
