//! `task.transition` (§3): start, pause, resume, finish and cancel. The
//! tarea row is locked first, so concurrent transitions on one tarea run one
//! after the other and each sees the estado the previous one left.
//!
//! Times come from `statement_timestamp()` of the UPDATE, which runs after
//! the lock was granted: a job that waited for the lock never stamps a time
//! earlier than the one the previous holder wrote (`now()`, the transaction
//! start, could be, and would break `fin_real >= inicio_real`).

use chrono::{DateTime, Utc};
use gad_shared::domain::tarea::Tarea;
use gad_shared::envelope::JobEnvelope;
use gad_shared::job::JobResult;
use serde::Deserialize;
use serde_json::json;

use super::super::{HandlerContext, HandlerError};
use super::access::{self, Begun, Locked};
use super::release::{self, Cause};
use super::{events, fields, notify};
use crate::effects::Tx;
use crate::effects::audit::{self, Entry, Severity};
use crate::effects::historial::{self, Change};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accion {
    Start,
    Pause,
    Resume,
    Finish,
    Cancel,
}

impl Accion {
    pub const ALL: [Accion; 5] = [
        Accion::Start,
        Accion::Pause,
        Accion::Resume,
        Accion::Finish,
        Accion::Cancel,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Accion::Start => "start",
            Accion::Pause => "pause",
            Accion::Resume => "resume",
            Accion::Finish => "finish",
            Accion::Cancel => "cancel",
        }
    }

    /// The estado this action leaves, if it may leave `from` at all.
    pub fn target(self, from: &str) -> Option<&'static str> {
        match (self, from) {
            (Accion::Start, "programada") | (Accion::Resume, "pausada") => Some("en_curso"),
            (Accion::Pause, "en_curso") => Some("pausada"),
            (Accion::Finish, "en_curso") => Some("finalizada"),
            (Accion::Cancel, "programada" | "en_curso" | "pausada") => Some("cancelada"),
            _ => None,
        }
    }

    /// The actions allowed from `estado`, for the 409 details.
    pub fn permitidas(estado: &str) -> Vec<&'static str> {
        Self::ALL
            .into_iter()
            .filter(|a| a.target(estado).is_some())
            .map(Accion::as_str)
            .collect()
    }

    fn update_sql(self) -> &'static str {
        match self {
            Accion::Start => {
                "UPDATE tareas SET estado = 'en_curso', inicio_real = statement_timestamp()
                 WHERE id = $1 RETURNING statement_timestamp()"
            }
            Accion::Pause => {
                "UPDATE tareas SET estado = 'pausada', pausado_en = statement_timestamp()
                 WHERE id = $1 RETURNING statement_timestamp()"
            }
            Accion::Resume => {
                "UPDATE tareas SET estado = 'en_curso', pausado_en = NULL,
                        tiempo_pausado = tiempo_pausado + greatest(statement_timestamp() - pausado_en, interval '0')
                 WHERE id = $1 RETURNING statement_timestamp()"
            }
            Accion::Finish => {
                "UPDATE tareas SET estado = 'finalizada', fin_real = statement_timestamp()
                 WHERE id = $1 RETURNING statement_timestamp()"
            }
            // From pausada the open pause is closed first; fin_real stays NULL.
            Accion::Cancel => {
                "UPDATE tareas SET estado = 'cancelada', pausado_en = NULL,
                        tiempo_pausado = tiempo_pausado
                            + coalesce(greatest(statement_timestamp() - pausado_en, interval '0'), interval '0')
                 WHERE id = $1 RETURNING statement_timestamp()"
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct Params {
    tarea_id: i64,
    accion: String,
    #[serde(default)]
    motivo: Option<String>,
}

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let p: Params = access::payload(job)?;
    let accion = Accion::parse(&p.accion).ok_or_else(|| {
        fields::invalid(
            "accion",
            "invalid_choice",
            "accion must be start, pause, resume, finish or cancel",
        )
    })?;
    let motivo = p.motivo.as_deref().map(str::trim).filter(|m| !m.is_empty());
    let motivo_len = motivo.map_or(0, |m| m.chars().count());
    if motivo_len > 500 || (accion == Accion::Cancel && motivo_len < 3) {
        let rule = if accion == Accion::Cancel {
            "3 to 500"
        } else {
            "at most 500"
        };
        return Err(fields::invalid(
            "motivo",
            "invalid_length",
            &format!("motivo must have {rule} characters"),
        ));
    }
    let (mut tx, actor) = match access::begin(ctx, job).await? {
        Begun::Done(prior) => return Ok(prior),
        Begun::Run(tx, actor) => (tx, actor),
    };
    let (locked, standing) = access::lock_visible(&mut tx, p.tarea_id, &actor).await?;
    let allowed = actor.is_supervisor() || (accion != Accion::Cancel && standing.may_work());
    if !allowed {
        return Err(HandlerError::forbidden());
    }
    let after = apply(&mut tx, &locked, accion, Some(actor.usuario_id), motivo, job).await?;
    access::finish(
        tx,
        job,
        JobResult {
            http_status: 200,
            body: json!(after),
        },
    )
    .await
}

/// Checks and applies one transition on a locked tarea, with its historial
/// and audit rows, events, unit holds and notices. Role checks are the
/// caller's; this is also how an accepted emergency starts (§4).
pub async fn apply(
    tx: &mut Tx<'_>,
    locked: &Locked,
    accion: Accion,
    actor: Option<i64>,
    motivo: Option<&str>,
    job: &JobEnvelope,
) -> Result<Tarea, HandlerError> {
    let Some(nuevo) = accion.target(&locked.estado) else {
        return Err(HandlerError::conflict(
            "invalid_transition",
            format!("cannot {} a tarea that is {}", accion.as_str(), locked.estado),
            json!({ "estado_actual": locked.estado, "accion": accion.as_str(), "permitidas": Accion::permitidas(&locked.estado) }),
        ));
    };
    let before = access::read(tx, locked.id).await?;
    let at: DateTime<Utc> = sqlx::query_scalar(accion.update_sql())
        .bind(locked.id)
        .fetch_one(&mut **tx)
        .await?;
    let after = access::read(tx, locked.id).await?;
    historial::record(
        tx,
        Change {
            tarea_id: locked.id,
            anterior: Some(&locked.estado),
            nuevo,
            usuario_id: actor,
            motivo,
            job_id: Some(job.job_id),
        },
    )
    .await?;
    audit::record(
        tx,
        Entry {
            severity: if accion == Accion::Cancel {
                Severity::Medium
            } else {
                Severity::Low
            },
            actor_usuario_id: actor,
            before: Some(json!(before)),
            after: Some(json!(after)),
            job_id: Some(job.job_id),
            request_id: job.request_id.as_deref(),
            client: job.client.as_ref(),
            ..Entry::new("task_status_changed", "tarea", locked.id)
        },
    )
    .await?;
    let change = events::StatusChange {
        anterior: &locked.estado,
        nuevo,
        usuario_id: actor,
        motivo,
        at,
    };
    events::task_status_changed(tx, &after, &change, job.job_id).await?;
    events::task_updated(tx, &before, &after, &[], job.job_id).await?;
    let cause = Cause {
        tarea_id: locked.id,
        actor_usuario_id: actor,
        job_id: job.job_id,
        request_id: job.request_id.as_deref(),
        client: job.client.as_ref(),
        motivo: accion.as_str(),
    };
    match accion {
        Accion::Start => {
            release::occupy(tx, None, cause).await?;
        }
        Accion::Finish | Accion::Cancel => {
            let units = release::assignees(tx, locked.id).await?;
            release::release(tx, &units, cause).await?;
            closing_notice(tx, locked, &after, accion, actor, motivo, job).await?;
        }
        Accion::Pause | Accion::Resume => {}
    }
    Ok(after)
}

/// `task_finished` / `task_cancelled` (§9.3): the creator if nivel ≥ 2 and
/// opted-in supervisors; on cancel the assignees too.
async fn closing_notice(
    tx: &mut Tx<'_>,
    locked: &Locked,
    t: &Tarea,
    accion: Accion,
    actor: Option<i64>,
    motivo: Option<&str>,
    job: &JobEnvelope,
) -> Result<(), HandlerError> {
    let creator: Vec<i64> = sqlx::query_scalar("SELECT id FROM usuarios WHERE id = $1 AND nivel >= 2")
        .bind(locked.creado_por_usuario_id)
        .fetch_all(&mut **tx)
        .await?;
    let mut to = notify::usuarios(tx, &creator).await?;
    let supervisors = notify::supervisors(tx).await?;
    notify::merge(&mut to, supervisors);
    let by = match actor {
        Some(u) => notify::display_name(tx, u).await?,
        None => "el sistema".to_string(),
    };
    let (kind, payload) = if accion == Accion::Finish {
        let horas = t
            .duracion_real_horas
            .map_or_else(|| "-".to_string(), |h| format!("{h:.2} h"));
        let text = format!("{} — {}\nFinalizada por {by}\nDuración: {horas}", t.codigo, t.titulo);
        (
            "task_finished",
            notify::plain_payload("Tarea finalizada", text, "info", t),
        )
    } else {
        let assignees: Vec<i64> = sqlx::query_scalar(
            "SELECT e.usuario_id FROM tarea_efectivos te JOIN efectivos e ON e.id = te.efectivo_id WHERE te.tarea_id = $1",
        )
        .bind(t.id)
        .fetch_all(&mut **tx)
        .await?;
        let more = notify::usuarios(tx, &assignees).await?;
        notify::merge(&mut to, more);
        let text = format!(
            "{} — {}\nCancelada por {by}\nMotivo: {}",
            t.codigo,
            t.titulo,
            motivo.unwrap_or("-")
        );
        (
            "task_cancelled",
            notify::plain_payload("Tarea cancelada", text, "warning", t),
        )
    };
    let notice = notify::Notice {
        event_id: notify::event_id(job.job_id, &format!("{kind}:{}", t.id)),
        kind,
        priority: 1,
        tarea_id: Some(t.id),
        payload,
    };
    notify::send(tx, &notice, &to).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine_of_section_3() {
        assert_eq!(Accion::permitidas("programada"), ["start", "cancel"]);
        assert_eq!(Accion::permitidas("en_curso"), ["pause", "finish", "cancel"]);
        assert_eq!(Accion::permitidas("pausada"), ["resume", "cancel"]);
        assert!(Accion::permitidas("finalizada").is_empty());
        assert!(Accion::permitidas("cancelada").is_empty());
        assert_eq!(Accion::Resume.target("pausada"), Some("en_curso"));
        assert_eq!(Accion::Start.target("en_curso"), None);
        assert_eq!(Accion::parse("finish"), Some(Accion::Finish));
        assert_eq!(Accion::parse("restart"), None);
    }
}
