//! `task.update` (§6.3 PUT/PATCH /api/v1/tasks/{id}): edits the given
//! fields of an active tarea. `estado` never changes here (422
//! `estado_read_only`), the assignment set neither (assign/unassign), and a
//! finalizada or cancelada tarea is closed to edits (409 `task_closed`).

use gad_shared::envelope::JobEnvelope;
use gad_shared::job::{JobError, JobResult};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sqlx::{Postgres, QueryBuilder};

use super::super::{HandlerContext, HandlerError};
use super::access::{self, Begun};
use super::events;
use super::fields::{self, TaskFields};
use crate::effects::audit::{self, Entry};

#[derive(Debug, Deserialize)]
struct Params {
    tarea_id: i64,
    changes: Map<String, Value>,
}

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let p: Params = access::payload(job)?;
    if p.changes.contains_key("estado") {
        return Err(HandlerError::Rejected(JobError {
            http_status: 422,
            error: "estado_read_only".into(),
            message: "estado changes only through start, pause, resume, finish and cancel".into(),
            details: Some(json!({ "field": "estado" })),
        }));
    }
    if p.changes.contains_key("efectivos_asignados") {
        return Err(fields::invalid(
            "efectivos_asignados",
            "read_only",
            "use /assign and /unassign to change the efectivos",
        ));
    }
    let f = fields::parse(&p.changes, false)?;
    let (mut tx, actor) = match access::begin(ctx, job).await? {
        Begun::Done(prior) => return Ok(prior),
        Begun::Run(tx, actor) => (tx, actor),
    };
    if !actor.is_supervisor() {
        return Err(HandlerError::forbidden());
    }
    let locked = access::lock(&mut tx, p.tarea_id)
        .await?
        .ok_or_else(|| HandlerError::not_found("tarea"))?;
    access::ensure_open(&locked)?;
    let before = access::read(&mut tx, p.tarea_id).await?;
    let inicio = f.inicio_programado.unwrap_or(before.inicio_programado);
    let fin = f.fin_programado.unwrap_or(before.fin_programado);
    if fin.is_some_and(|fin| fin <= inicio) {
        return Err(fields::invalid(
            "fin_programado",
            "invalid_range",
            "fin_programado must be after inicio_programado",
        ));
    }
    if let Some(d) = f.delegado_usuario_id {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM usuarios WHERE id = $1 AND deleted_at IS NULL)")
                .bind(d)
                .fetch_one(&mut *tx)
                .await?;
        if !exists {
            return Err(fields::invalid(
                "delegado_usuario_id",
                "not_found",
                "delegado_usuario_id does not exist",
            ));
        }
    }
    if let Some(mut qb) = update_statement(p.tarea_id, &f) {
        qb.build().execute(&mut *tx).await?;
    }
    let after = access::read(&mut tx, p.tarea_id).await?;
    if events::changed_fields(&before, &after).is_empty() {
        return access::finish(
            tx,
            job,
            JobResult {
                http_status: 200,
                body: json!(after),
            },
        )
        .await;
    }
    audit::record(
        &mut tx,
        Entry {
            actor_usuario_id: Some(actor.usuario_id),
            before: Some(json!(before)),
            after: Some(json!(after)),
            job_id: Some(job.job_id),
            request_id: job.request_id.as_deref(),
            client: job.client.as_ref(),
            ..Entry::new("task_updated", "tarea", p.tarea_id)
        },
    )
    .await?;
    // A replaced delegado still hears that the tarea left them.
    let extra: Vec<i64> = Some(before.delegado_usuario_id)
        .filter(|d| *d != after.delegado_usuario_id)
        .into_iter()
        .collect();
    events::task_updated(&mut tx, &before, &after, &extra, job.job_id).await?;
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

/// `UPDATE tareas SET <given fields> WHERE id = …`; `None` when nothing was given.
fn update_statement(id: i64, f: &TaskFields) -> Option<QueryBuilder<Postgres>> {
    let mut qb = QueryBuilder::<Postgres>::new("UPDATE tareas SET ");
    let mut n = 0;
    {
        let mut set = qb.separated(", ");
        let mut text = |column: &str, value: Option<String>, cast: &str| {
            set.push(format!("{column} = "));
            set.push_bind_unseparated(value);
            set.push_unseparated(cast.to_string());
        };
        if let Some(v) = &f.codigo {
            text("codigo", Some(v.clone()), "");
            n += 1;
        }
        if let Some(v) = &f.titulo {
            text("titulo", Some(v.clone()), "");
            n += 1;
        }
        if let Some(v) = &f.tipo {
            text("tipo", Some(v.clone()), "::tipo_tarea");
            n += 1;
        }
        if let Some(v) = &f.descripcion {
            text("descripcion", v.clone(), "");
            n += 1;
        }
        if let Some(v) = &f.ubicacion_descripcion {
            text("ubicacion_descripcion", v.clone(), "");
            n += 1;
        }
        if let Some(v) = f.inicio_programado {
            set.push("inicio_programado = ");
            set.push_bind_unseparated(v);
            n += 1;
        }
        if let Some(v) = f.fin_programado {
            set.push("fin_programado = ");
            set.push_bind_unseparated(v);
            n += 1;
        }
        if let Some(v) = f.delegado_usuario_id {
            set.push("delegado_usuario_id = ");
            set.push_bind_unseparated(v);
            n += 1;
        }
        if let Some(v) = f.prioridad {
            set.push("prioridad = ");
            set.push_bind_unseparated(v);
            n += 1;
        }
        match f.ubicacion {
            Some(Some((lat, lon))) => {
                set.push("ubicacion = ST_SetSRID(ST_MakePoint(");
                set.push_bind_unseparated(lon);
                set.push_unseparated("::float8, ");
                set.push_bind_unseparated(lat);
                set.push_unseparated("::float8), 4326)::geography");
                n += 1;
            }
            Some(None) => {
                set.push("ubicacion = NULL");
                n += 1;
            }
            None => {}
        }
    }
    if n == 0 {
        return None;
    }
    qb.push(" WHERE id = ").push_bind(id);
    Some(qb)
}
