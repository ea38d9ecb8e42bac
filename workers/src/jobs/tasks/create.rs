//! `task.create` (§3 create, §6.3 POST /api/v1/tasks): a programada tarea,
//! its initial asignaciones, the creation historial row, `task_created`,
//! `task_assigned` per assignee with its notification, and an `urgent_task`
//! alert for prioridad ≥ 4.

use chrono::{DateTime, Utc};
use gad_shared::domain::tarea::Tarea;
use gad_shared::envelope::JobEnvelope;
use gad_shared::job::JobResult;
use serde::Deserialize;
use serde_json::json;

use super::super::{HandlerContext, HandlerError};
use super::access::{self, Begun};
use super::assign::{self, Unit};
use super::fields::TaskFields;
use super::{events, fields, notify};
use crate::effects::Tx;
use crate::effects::audit::{self, Entry};
use crate::effects::historial::{self, Change};

#[derive(Debug, Deserialize)]
struct Extra {
    #[serde(default)]
    efectivos_asignados: Vec<i64>,
    #[serde(default)]
    origen: Option<String>,
}

const ORIGENES: [&str; 2] = ["api", "telegram"];

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let map = job
        .payload
        .as_object()
        .ok_or_else(|| fields::invalid("payload", "invalid", "payload must be an object"))?;
    let f = fields::parse(map, true)?;
    let extra: Extra = access::payload(job)?;
    let ids = extra.efectivos_asignados;
    if ids.len() > 50
        || ids.iter().any(|id| *id <= 0)
        || ids.iter().collect::<std::collections::HashSet<_>>().len() != ids.len()
    {
        return Err(fields::invalid(
            "efectivos_asignados",
            "invalid_ids",
            "efectivos_asignados must be up to 50 distinct ids",
        ));
    }
    let origen = extra.origen.unwrap_or_else(|| "api".into());
    if !ORIGENES.contains(&origen.as_str()) {
        return Err(fields::invalid(
            "origen",
            "invalid_choice",
            "origen must be api or telegram",
        ));
    }
    let (Some(codigo), Some(titulo), Some(tipo), Some(inicio), Some(delegado)) = (
        &f.codigo,
        &f.titulo,
        &f.tipo,
        f.inicio_programado,
        f.delegado_usuario_id,
    ) else {
        return Err(fields::invalid("payload", "required", "create fields missing"));
    };

    let (mut tx, actor) = match access::begin(ctx, job).await? {
        Begun::Done(prior) => return Ok(prior),
        Begun::Run(tx, actor) => (tx, actor),
    };
    // Redelivered after a commit whose job row was not marked: same tarea.
    let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM tareas WHERE creado_por_job_id = $1")
        .bind(job.job_id)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(id) = existing {
        return access::finish_with(tx, job, id, 201).await;
    }
    if !actor.is_supervisor() && (delegado != actor.usuario_id || ids.iter().any(|id| Some(*id) != actor.efectivo_id)) {
        return Err(HandlerError::forbidden());
    }
    let delegado_ok: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM usuarios WHERE id = $1 AND deleted_at IS NULL)")
            .bind(delegado)
            .fetch_one(&mut *tx)
            .await?;
    if !delegado_ok {
        return Err(fields::invalid(
            "delegado_usuario_id",
            "not_found",
            "delegado_usuario_id does not exist",
        ));
    }
    let units = assign::lock_units(&mut tx, &ids).await?;
    assign::ensure_available(&units)?;

    let t = insert(
        &mut tx,
        Creation {
            codigo,
            titulo,
            tipo,
            inicio,
            delegado,
            f: &f,
            creador: actor.usuario_id,
            origen: &origen,
            efectivos: &ids,
            actor: Some(actor.usuario_id),
        },
        job,
    )
    .await?;
    announce_assignments(&mut tx, &t, &units, job).await?;
    if t.prioridad >= 4 {
        let alert = notify::Alert {
            kind: "urgent_task",
            title: format!("Tarea {} ({})", notify::prioridad_label(t.prioridad), t.codigo),
            content: format!("{} — {}", t.codigo, t.titulo),
            level: if t.prioridad >= 5 { "critical" } else { "warning" },
            tarea_id: Some(t.id),
            efectivo_id: None,
        };
        notify::alert(
            &mut tx,
            alert,
            notify::event_id(job.job_id, "urgent_task"),
            1,
            job.job_id,
        )
        .await?;
    }
    access::finish(
        tx,
        job,
        JobResult {
            http_status: 201,
            body: json!(t),
        },
    )
    .await
}

/// A new tarea: the §6.3 create fields (checked by [`fields::parse`]) and who
/// and what it comes from.
pub(crate) struct Creation<'a> {
    pub codigo: &'a str,
    pub titulo: &'a str,
    pub tipo: &'a str,
    pub inicio: DateTime<Utc>,
    pub delegado: i64,
    /// The optional fields (descripcion, prioridad, fin, ubicacion).
    pub f: &'a TaskFields,
    pub creador: i64,
    pub origen: &'a str,
    /// Assigned at once, locked and checked available by the caller.
    pub efectivos: &'a [i64],
    /// The usuario recorded in historial, audit and `asignado_por`; `None` = the system.
    pub actor: Option<i64>,
}

/// Inserts the tarea, its asignaciones, the creation historial row, the
/// audit row and `task_created` (shared with `import.tareas`); returns the
/// read model. The unique `creado_por_job_id` stops a second tarea per job.
pub(crate) async fn insert(tx: &mut Tx<'_>, c: Creation<'_>, job: &JobEnvelope) -> Result<Tarea, HandlerError> {
    let f = c.f;
    let (lat, lon) = match f.ubicacion.flatten() {
        Some((lat, lon)) => (Some(lat), Some(lon)),
        None => (None, None),
    };
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO tareas (codigo, titulo, descripcion, tipo, prioridad, origen, inicio_programado, fin_programado,
                             delegado_usuario_id, creado_por_usuario_id, ubicacion, ubicacion_descripcion, creado_por_job_id)
         VALUES ($1, $2, $3, $4::tipo_tarea, $5, $6, $7, $8, $9, $10,
                 CASE WHEN $11::float8 IS NULL THEN NULL
                      ELSE ST_SetSRID(ST_MakePoint($12::float8, $11::float8), 4326)::geography END,
                 $13, $14)
         RETURNING id",
    )
    .bind(c.codigo)
    .bind(c.titulo)
    .bind(f.descripcion.clone().flatten())
    .bind(c.tipo)
    .bind(f.prioridad.unwrap_or(2))
    .bind(c.origen)
    .bind(c.inicio)
    .bind(f.fin_programado.flatten())
    .bind(c.delegado)
    .bind(c.creador)
    .bind(lat)
    .bind(lon)
    .bind(f.ubicacion_descripcion.clone().flatten())
    .bind(job.job_id)
    .fetch_one(&mut **tx)
    .await?;
    if !c.efectivos.is_empty() {
        sqlx::query(
            "INSERT INTO tarea_efectivos (tarea_id, efectivo_id, asignado_por_usuario_id) SELECT $1, unnest($2::bigint[]), $3",
        )
        .bind(id)
        .bind(c.efectivos)
        .bind(c.actor)
        .execute(&mut **tx)
        .await?;
    }
    historial::record(
        tx,
        Change {
            tarea_id: id,
            anterior: None,
            nuevo: "programada",
            usuario_id: c.actor,
            motivo: Some("creada"),
            job_id: Some(job.job_id),
        },
    )
    .await?;
    let t = access::read(tx, id).await?;
    audit::record(
        tx,
        Entry {
            actor_usuario_id: c.actor,
            after: Some(json!(t)),
            job_id: Some(job.job_id),
            request_id: job.request_id.as_deref(),
            client: job.client.as_ref(),
            ..Entry::new("task_created", "tarea", id)
        },
    )
    .await?;
    events::task_created(tx, &t, job.job_id).await?;
    Ok(t)
}

/// `task_assigned` (event and notification) for each new assignee.
pub(super) async fn announce_assignments(
    tx: &mut crate::effects::Tx<'_>,
    t: &gad_shared::domain::tarea::Tarea,
    units: &[Unit],
    job: &JobEnvelope,
) -> Result<(), HandlerError> {
    for u in units {
        events::task_assigned(tx, t, u.id, u.usuario_id, "asignado", job.job_id).await?;
        let to = notify::usuarios(tx, &[u.usuario_id]).await?;
        let notice = notify::Notice {
            event_id: notify::event_id(job.job_id, &format!("task_assigned:{}:{}", t.id, u.id)),
            kind: "task_assigned",
            priority: 0,
            tarea_id: Some(t.id),
            payload: notify::task_assigned_payload(t, u.id),
        };
        notify::send(tx, &notice, &to).await?;
    }
    Ok(())
}
