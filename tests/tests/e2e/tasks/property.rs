//! A property test of the task handlers, run directly against the test's
//! database: random sequences of transitions, assignments and edits on
//! fresh tareas never break the §2.3 constraints, the historial always
//! chains to the current estado, the units are `en_tarea` exactly while a
//! running tarea holds them (§3 release rule), and every outcome agrees with
//! a small model of §3 and §6.3.
//!
//! Cases are generated from fixed seeds (ChaCha8), so a failure names the
//! seed that reproduces it.

use std::collections::BTreeSet;

use anyhow::Context;
use gad_e2e::{TestApp, spawn_app};
use gad_shared::envelope::{ENVELOPE_VERSION, JobEnvelope};
use gad_shared::redis_conn::Redis;
use gad_workers::jobs::{self, HandlerContext, HandlerError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::support::{codigo, free_units};

const CASES: u64 = 20;
const MAX_STEPS: usize = 8;
const UNITS_PER_CASE: usize = 3;

#[derive(Debug, Clone, Copy)]
enum Op {
    Transition(&'static str),
    Assign(usize),
    Unassign(usize),
    Retitle,
}

fn random_op(rng: &mut ChaCha8Rng) -> Op {
    match rng.random_range(0..10) {
        0..=5 => Op::Transition(["start", "pause", "resume", "finish", "cancel"][rng.random_range(0..5)]),
        6 | 7 => Op::Assign(rng.random_range(0..UNITS_PER_CASE)),
        8 => Op::Unassign(rng.random_range(0..UNITS_PER_CASE)),
        _ => Op::Retitle,
    }
}

/// §3 as a table, independent of the handlers' own.
fn target(accion: &str, from: &str) -> Option<&'static str> {
    match (accion, from) {
        ("start", "programada") | ("resume", "pausada") => Some("en_curso"),
        ("pause", "en_curso") => Some("pausada"),
        ("finish", "en_curso") => Some("finalizada"),
        ("cancel", "programada" | "en_curso" | "pausada") => Some("cancelada"),
        _ => None,
    }
}

struct Model {
    estado: &'static str,
    assigned: BTreeSet<usize>,
    transitions: usize,
}

impl Model {
    fn terminal(&self) -> bool {
        matches!(self.estado, "finalizada" | "cancelada")
    }
    /// The expected failure code of `op`, or `None` when it must succeed; applies it.
    fn step(&mut self, op: Op) -> Option<&'static str> {
        match op {
            Op::Transition(a) => match target(a, self.estado) {
                Some(to) => {
                    self.estado = to;
                    self.transitions += 1;
                    None
                }
                None => Some("invalid_transition"),
            },
            _ if self.terminal() => Some("task_closed"),
            Op::Assign(u) => {
                self.assigned.insert(u);
                None
            }
            Op::Unassign(u) => {
                self.assigned.remove(&u);
                None
            }
            Op::Retitle => None,
        }
    }
    fn holds(&self, u: usize) -> bool {
        self.assigned.contains(&u) && matches!(self.estado, "en_curso" | "pausada")
    }
}

struct Runner {
    ctx: HandlerContext,
    actor: i64,
}

impl Runner {
    async fn run(&self, kind: &str, payload: Value) -> Result<Value, HandlerError> {
        let job = JobEnvelope {
            v: ENVELOPE_VERSION,
            job_id: uuid::Uuid::now_v7(),
            kind: kind.into(),
            submitted_by: Some(self.actor),
            submitted_at: chrono::Utc::now(),
            request_id: None,
            client: None,
            payload,
        };
        jobs::run(&self.ctx, &job).await.map(|r| r.body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_action_sequences_keep_every_invariant() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let revocation = app.js.get_key_value(app.topology.revocation_bucket()).await?;
    let ctx = HandlerContext {
        db: app.db.clone(),
        knn_db: app.db.clone(),
        redis: Redis::new(&app.isolation.redis),
        revocation,
    };
    let runner = Runner {
        ctx,
        actor: app.supervisor.id,
    };
    let pool = free_units(&app, (CASES as usize * UNITS_PER_CASE) as i64).await?;
    let mut tally = Tally::default();
    for case in 0..CASES {
        let seed = 0x7A8E_A500 + case;
        let units: Vec<i64> = pool[case as usize * UNITS_PER_CASE..][..UNITS_PER_CASE]
            .iter()
            .map(|u| u.efectivo_id)
            .collect();
        run_case(&app, &runner, seed, &units, &mut tally)
            .await
            .with_context(|| format!("case seed {seed:#x}"))?;
    }
    // The cases must actually exercise both sides of the rules.
    assert!(
        tally.applied >= 20 && tally.refused >= 10 && tally.held >= 5,
        "{tally:?}"
    );
    app.stop().await
}

/// How often steps succeeded, were refused, and left a unit held.
#[derive(Debug, Default)]
struct Tally {
    applied: usize,
    refused: usize,
    held: usize,
}

async fn run_case(app: &TestApp, runner: &Runner, seed: u64, units: &[i64], tally: &mut Tally) -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let initial: BTreeSet<usize> = (0..UNITS_PER_CASE).filter(|_| rng.random_bool(0.4)).collect();
    let created = runner
        .run(
            "task.create",
            json!({
                "codigo": codigo("P"), "titulo": "Caso de propiedad", "tipo": "vigilancia",
                "inicio_programado": super::support::at(-30), "delegado_usuario_id": runner.actor,
                "prioridad": rng.random_range(1..=3),
                "efectivos_asignados": initial.iter().map(|u| units[*u]).collect::<Vec<_>>(),
            }),
        )
        .await
        .map_err(|e| anyhow::anyhow!("create failed: {e:?}"))?;
    let id = created["id"].as_i64().context("no id")?;
    let mut model = Model {
        estado: "programada",
        assigned: initial,
        transitions: 0,
    };
    check(app, id, &model, units).await?;
    let steps = rng.random_range(1..=MAX_STEPS);
    for n in 0..steps {
        let op = random_op(&mut rng);
        let payload = match op {
            Op::Transition(a) => json!({ "tarea_id": id, "accion": a, "motivo": "paso de la prueba" }),
            Op::Assign(u) | Op::Unassign(u) => json!({ "tarea_id": id, "efectivo_ids": [units[u]] }),
            Op::Retitle => json!({ "tarea_id": id, "changes": { "titulo": format!("Paso {n} de la prueba") } }),
        };
        let kind = match op {
            Op::Transition(_) => "task.transition",
            Op::Assign(_) => "task.assign",
            Op::Unassign(_) => "task.unassign",
            Op::Retitle => "task.update",
        };
        let expected = model.step(op);
        let outcome = runner.run(kind, payload).await;
        match (expected, outcome) {
            (None, Ok(_)) => tally.applied += 1,
            (Some(code), Err(HandlerError::Rejected(e))) if e.error == code && e.http_status == 409 => {
                tally.refused += 1
            }
            (expected, got) => anyhow::bail!("step {n} {op:?}: expected {expected:?}, got {got:?}"),
        }
        check(app, id, &model, units)
            .await
            .with_context(|| format!("after step {n} {op:?}"))?;
        tally.held += (0..UNITS_PER_CASE).filter(|u| model.holds(*u)).count();
    }
    Ok(())
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    estado: String,
    constraints_hold: bool,
    efectivos: Vec<i64>,
}

/// The tarea, its historial and the case's units against the model.
async fn check(app: &TestApp, id: i64, model: &Model, units: &[i64]) -> anyhow::Result<()> {
    // §2.3 restated, so a weakened CHECK would still be caught here.
    let row: Row = sqlx::query_as(
        "SELECT estado::text AS estado,
                (fin_programado IS NULL OR fin_programado > inicio_programado)
                AND ((inicio_real IS NULL AND fin_real IS NULL)
                     OR (inicio_real IS NOT NULL AND (fin_real IS NULL OR fin_real >= inicio_real)))
                AND (estado <> 'en_curso' OR (inicio_real IS NOT NULL AND pausado_en IS NULL))
                AND (estado <> 'pausada' OR (inicio_real IS NOT NULL AND pausado_en IS NOT NULL))
                AND (estado <> 'finalizada' OR fin_real IS NOT NULL)
                AND (estado <> 'programada' OR inicio_real IS NULL)
                AND tiempo_pausado >= interval '0' AS constraints_hold,
                COALESCE((SELECT array_agg(efectivo_id ORDER BY efectivo_id) FROM tarea_efectivos WHERE tarea_id = t.id),
                         '{}') AS efectivos
         FROM tareas t WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await?;
    anyhow::ensure!(row.constraints_hold, "§2.3 broken by {row:?}");
    anyhow::ensure!(
        row.estado == model.estado,
        "estado {} but the model says {}",
        row.estado,
        model.estado
    );
    let mut expected: Vec<i64> = model.assigned.iter().map(|u| units[*u]).collect();
    expected.sort_unstable();
    anyhow::ensure!(
        row.efectivos == expected,
        "efectivos {:?}, model {expected:?}",
        row.efectivos
    );

    let history: Vec<(Option<String>, String)> = sqlx::query_as(
        "SELECT estado_anterior::text, estado_nuevo::text FROM historial_estados WHERE tarea_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await?;
    anyhow::ensure!(
        history.len() == model.transitions + 1,
        "{} historial rows for {} transitions",
        history.len(),
        model.transitions
    );
    anyhow::ensure!(
        history.first() == Some(&(None, "programada".to_string())),
        "creation row: {history:?}"
    );
    for pair in history.windows(2) {
        anyhow::ensure!(
            pair[1].0.as_deref() == Some(pair[0].1.as_str()),
            "historial does not chain: {history:?}"
        );
    }
    anyhow::ensure!(
        history.last().map(|h| h.1.as_str()) == Some(model.estado),
        "last historial row is not the estado"
    );

    for (u, efectivo_id) in units.iter().enumerate() {
        let d = super::support::disponibilidad(app, *efectivo_id).await?;
        let want = if model.holds(u) { "en_tarea" } else { "disponible" };
        anyhow::ensure!(d == want, "unit {efectivo_id} is {d}, expected {want}");
    }
    Ok(())
}
