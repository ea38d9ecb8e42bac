//! Deterministic synthetic data for local work and benchmarks (domain.md §10).
//!
//! Generation is pure and in memory; loading is one transaction of bulk COPYs.
//! - [`shares`]: exact proportions and the seeded random streams.
//! - [`positions`]: points in the Buenos Aires box, clustered around hotspots.
//! - [`people`]: usuarios (admins, supervisors, field officers) and their efectivos.
//! - [`tasks`]: tareas, with [`timeline`] for each path through the state
//!   machine and [`assign`] for assignments that respect the release rule.
//! - [`copy`], [`rows`] and [`load`]: the COPY encoder, the generated rows in
//!   COPY form, and the SQL that replaces the seed rows in one transaction.

mod assign;
mod copy;
mod load;
mod people;
mod positions;
mod rows;
mod shares;
mod tasks;
mod timeline;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::distr::Alphanumeric;

/// Which data set to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Small: local work and tests.
    Dev,
    /// Large: KNN, map and dispatch benchmarks.
    Bench,
}

/// How many rows of each kind a profile creates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    pub admins: usize,
    pub supervisors: usize,
    pub efectivos: usize,
    pub tareas: usize,
}

impl Profile {
    pub(crate) const fn sizes(self) -> Sizes {
        match self {
            Profile::Dev => Sizes {
                admins: 3,
                supervisors: 20,
                efectivos: 1_000,
                tareas: 1_000,
            },
            Profile::Bench => Sizes {
                admins: 5,
                supervisors: 500,
                efectivos: 100_000,
                tareas: 100_000,
            },
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Dev => "dev",
            Profile::Bench => "bench",
        })
    }
}

/// A profile name other than `dev` or `bench`.
#[derive(Debug, thiserror::Error)]
#[error("unknown seed profile {0:?} (expected \"dev\" or \"bench\")")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dev" => Ok(Profile::Dev),
            "bench" => Ok(Profile::Bench),
            _ => Err(UnknownProfile(s.to_owned())),
        }
    }
}

/// What to seed. The same options always produce the same rows.
#[derive(Clone)]
pub struct SeedOptions {
    pub profile: Profile,
    pub seed: u64,
    /// Password for every seeded usuario; generated (and reported) when `None`.
    pub password: Option<String>,
}

impl Default for SeedOptions {
    fn default() -> Self {
        Self {
            profile: Profile::Dev,
            seed: 42,
            password: None,
        }
    }
}

// Manual Debug so the password never reaches a log line.
impl fmt::Debug for SeedOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeedOptions")
            .field("profile", &self.profile)
            .field("seed", &self.seed)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Row counts written by one run.
pub struct SeedReport {
    pub usuarios: u64,
    pub efectivos: u64,
    pub tareas: u64,
    pub asignaciones: u64,
    pub historial: u64,
    /// The generated password, to be shown once; `None` when it was supplied.
    pub password: Option<String>,
    pub elapsed: Duration,
}

impl fmt::Debug for SeedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeedReport")
            .field("usuarios", &self.usuarios)
            .field("efectivos", &self.efectivos)
            .field("tareas", &self.tareas)
            .field("asignaciones", &self.asignaciones)
            .field("historial", &self.historial)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("elapsed", &self.elapsed)
            .finish()
    }
}

#[derive(thiserror::Error, Debug)]
pub enum SeedError {
    #[error("refusing to seed a production environment")]
    Production,
    #[error("seed database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("seed password: {0}")]
    Password(String),
}

const GENERATED_PASSWORD_LEN: usize = 16;

/// Replaces the seed rows of the database behind `pool` with the data set
/// `opts` describes, in one transaction. Rows not created by the seed are kept.
pub async fn run(pool: &sqlx::PgPool, environment: &str, opts: SeedOptions) -> Result<SeedReport, SeedError> {
    if environment.trim().eq_ignore_ascii_case("production") {
        return Err(SeedError::Production);
    }
    let started = Instant::now();

    let (password, generated) = match opts.password {
        Some(p) if p.is_empty() => return Err(SeedError::Password("the password must not be empty".into())),
        Some(p) => (p, false),
        // From the OS generator, not the seed: a password derivable from the
        // public default seed would be no password at all.
        None => {
            let p: String = rand::rng()
                .sample_iter(Alphanumeric)
                .take(GENERATED_PASSWORD_LEN)
                .map(char::from)
                .collect();
            (p, true)
        }
    };
    // Hashed once and shared by every seeded usuario: Argon2id is deliberately
    // slow, and 100k hashes would take many minutes.
    let to_hash = password.clone();
    let hash = tokio::task::spawn_blocking(move || gad_shared::password::hash(&to_hash))
        .await
        .map_err(|e| SeedError::Password(e.to_string()))?
        .map_err(|e| SeedError::Password(e.to_string()))?;

    // Instants are whole Unix seconds, which keeps every generated time and
    // interval exact and the arithmetic in the generators trivial.
    let now = chrono::Utc::now().timestamp();
    let sizes = opts.profile.sizes();
    let mut staff = people::generate(opts.seed, sizes, now);
    let plan = tasks::generate(opts.seed, sizes.tareas, &mut staff, now);

    let counts = load::replace(pool, &staff, &plan, &hash).await?;
    settle(pool).await?;
    Ok(SeedReport {
        usuarios: counts.usuarios,
        efectivos: counts.efectivos,
        tareas: counts.tareas,
        asignaciones: counts.asignaciones,
        historial: counts.historial,
        password: generated.then_some(password),
        elapsed: started.elapsed(),
    })
}

/// After a bulk load: statistics for the planner, and a visibility map so
/// counts and list pages are index-only scans (on the bench profile a task
/// count went from 40 ms to 11 ms). Autovacuum would get there later; a
/// benchmark or a demo starts now. VACUUM runs outside a transaction and
/// past the pool's statement timeout, on a connection of its own.
async fn settle(pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SET statement_timeout = 0").execute(&mut *conn).await?;
    let vacuumed = sqlx::query("VACUUM (ANALYZE) usuarios, efectivos, tareas, tarea_efectivos, historial_estados")
        .execute(&mut *conn)
        .await;
    // The connection goes back to the pool with its usual timeout, or not at all.
    match sqlx::query("RESET statement_timeout").execute(&mut *conn).await {
        Ok(_) => drop(conn),
        Err(_) => drop(conn.detach()),
    }
    vacuumed.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_round_trips_through_its_name() {
        for p in [Profile::Dev, Profile::Bench] {
            assert_eq!(p.to_string().parse::<Profile>().ok(), Some(p));
        }
        assert!("prod".parse::<Profile>().is_err());
    }

    #[test]
    fn debug_output_hides_the_password() {
        let opts = SeedOptions {
            password: Some("hunter2hunter2".into()),
            ..SeedOptions::default()
        };
        assert!(!format!("{opts:?}").contains("hunter2"));
    }
}
