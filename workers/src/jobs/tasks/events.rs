//! The events a task job queues (§8): who hears about a tarea, and the data
//! shape of each event type. Everything goes through the outbox, so nothing
//! is seen before the job's transaction commits.

use chrono::{DateTime, Utc};
use gad_shared::domain::tarea::Tarea;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::effects::Tx;
use crate::effects::outbox;

/// `tasks`, `tasks.{id}`, the delegado's and every assignee's `user.{u}`,
/// plus `extra_users` (people who just stopped being involved and must
/// still learn about it: an unassigned unit, a replaced delegado).
pub async fn task_topics(tx: &mut Tx<'_>, tarea: &Tarea, extra_users: &[i64]) -> Result<Vec<String>, sqlx::Error> {
    let assignees: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT e.usuario_id FROM tarea_efectivos te JOIN efectivos e ON e.id = te.efectivo_id
         WHERE te.tarea_id = $1 ORDER BY 1",
    )
    .bind(tarea.id)
    .fetch_all(&mut **tx)
    .await?;
    let mut users = vec![tarea.delegado_usuario_id];
    for u in assignees.into_iter().chain(extra_users.iter().copied()) {
        if !users.contains(&u) {
            users.push(u);
        }
    }
    let mut topics = vec!["tasks".to_string(), format!("tasks.{}", tarea.id)];
    topics.extend(users.into_iter().map(|u| format!("user.{u}")));
    Ok(topics)
}

pub async fn task_created(tx: &mut Tx<'_>, tarea: &Tarea, job_id: Uuid) -> Result<(), sqlx::Error> {
    let topics = task_topics(tx, tarea, &[]).await?;
    outbox::event(tx, "task_created", &topics, json!({ "tarea": tarea }), Some(job_id)).await?;
    Ok(())
}

/// `task_updated` with the Tarea fields that differ between the two images.
pub async fn task_updated(
    tx: &mut Tx<'_>,
    before: &Tarea,
    after: &Tarea,
    extra_users: &[i64],
    job_id: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    let changed = changed_fields(before, after);
    let topics = task_topics(tx, after, extra_users).await?;
    outbox::event(
        tx,
        "task_updated",
        &topics,
        json!({ "tarea": after, "changed": changed }),
        Some(job_id),
    )
    .await?;
    Ok(changed)
}

pub struct StatusChange<'a> {
    pub anterior: &'a str,
    pub nuevo: &'a str,
    pub usuario_id: Option<i64>,
    pub motivo: Option<&'a str>,
    pub at: DateTime<Utc>,
}

pub async fn task_status_changed(
    tx: &mut Tx<'_>,
    tarea: &Tarea,
    c: &StatusChange<'_>,
    job_id: Uuid,
) -> Result<(), sqlx::Error> {
    let topics = task_topics(tx, tarea, &[]).await?;
    let data = json!({
        "tarea_id": tarea.id,
        "codigo": tarea.codigo,
        "estado_anterior": c.anterior,
        "estado_nuevo": c.nuevo,
        "usuario_id": c.usuario_id,
        "motivo": c.motivo,
        "at": gad_shared::time::format(&c.at),
    });
    outbox::event(tx, "task_status_changed", &topics, data, Some(job_id)).await?;
    Ok(())
}

/// `task_assigned` for one asignación: `accion` is `asignado`,
/// `desasignado`, `aceptada` or `rechazada`.
pub async fn task_assigned(
    tx: &mut Tx<'_>,
    tarea: &Tarea,
    efectivo_id: i64,
    usuario_id: i64,
    accion: &str,
    job_id: Uuid,
) -> Result<(), sqlx::Error> {
    let topics = task_topics(tx, tarea, &[usuario_id]).await?;
    let data = json!({
        "tarea_id": tarea.id,
        "codigo": tarea.codigo,
        "efectivo_id": efectivo_id,
        "usuario_id": usuario_id,
        "accion": accion,
    });
    outbox::event(tx, "task_assigned", &topics, data, Some(job_id)).await?;
    Ok(())
}

pub async fn efectivo_status_changed(
    tx: &mut Tx<'_>,
    efectivo_id: i64,
    anterior: &str,
    nueva: &str,
    tarea_id: i64,
    motivo: &str,
    job_id: Uuid,
) -> Result<(), sqlx::Error> {
    let topics = ["efectivos".to_string(), format!("efectivos.{efectivo_id}")];
    let data = json!({
        "efectivo_id": efectivo_id,
        "disponibilidad_anterior": anterior,
        "disponibilidad": nueva,
        "tarea_id": tarea_id,
        "motivo": motivo,
    });
    outbox::event(tx, "efectivo_status_changed", &topics, data, Some(job_id)).await?;
    Ok(())
}

/// Top-level keys of the Tarea JSON whose values differ; `updated_at`
/// moves on every write and says nothing.
pub fn changed_fields(before: &Tarea, after: &Tarea) -> Vec<String> {
    let (Value::Object(b), Value::Object(a)) = (json!(before), json!(after)) else {
        return Vec::new();
    };
    a.iter()
        .filter(|(k, v)| k.as_str() != "updated_at" && b.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect()
}
