//! Task events of dispatch (§8): each goes to `tasks`, `tasks.{id}` and
//! `user.{u}` for the delegado and every assignee's usuario.

use gad_shared::domain::tarea;
use serde_json::json;
use uuid::Uuid;

use crate::effects::{Tx, outbox};

/// Topics of a task event, read after the change; `also` adds usuarios who
/// just lost the task (a unit that declined it) so they hear about it too.
pub async fn topics(tx: &mut Tx<'_>, tarea_id: i64, also: &[i64]) -> Result<Vec<String>, sqlx::Error> {
    let mut usuarios: Vec<i64> = sqlx::query_scalar(
        "SELECT delegado_usuario_id FROM tareas WHERE id = $1
         UNION
         SELECT e.usuario_id FROM tarea_efectivos te JOIN efectivos e ON e.id = te.efectivo_id WHERE te.tarea_id = $1",
    )
    .bind(tarea_id)
    .fetch_all(&mut **tx)
    .await?;
    usuarios.extend_from_slice(also);
    usuarios.sort_unstable();
    usuarios.dedup();
    let mut topics = vec!["tasks".to_string(), format!("tasks.{tarea_id}")];
    topics.extend(usuarios.into_iter().map(|u| format!("user.{u}")));
    Ok(topics)
}

/// `task_created {tarea}` or `task_updated {tarea, changed}`, with the row as it is now.
pub async fn tarea_snapshot(
    tx: &mut Tx<'_>,
    tarea_id: i64,
    changed: Option<&[&str]>,
    job_id: Uuid,
) -> Result<serde_json::Value, sqlx::Error> {
    let row = tarea::find_any(&mut **tx, tarea_id).await?;
    let snapshot = json!(row);
    let topics = topics(tx, tarea_id, &[]).await?;
    let (event_type, data) = match changed {
        None => ("task_created", json!({ "tarea": snapshot })),
        Some(changed) => ("task_updated", json!({ "tarea": snapshot, "changed": changed })),
    };
    outbox::event(tx, event_type, &topics, data, Some(job_id)).await?;
    Ok(snapshot)
}

pub struct Assignment<'a> {
    pub tarea_id: i64,
    pub codigo: &'a str,
    pub efectivo_id: i64,
    pub usuario_id: i64,
    /// `asignado`, `desasignado`, `aceptada` or `rechazada`.
    pub accion: &'a str,
}

/// `task_assigned {tarea_id, codigo, efectivo_id, usuario_id, accion}`.
pub async fn task_assigned(tx: &mut Tx<'_>, a: Assignment<'_>, job_id: Uuid) -> Result<(), sqlx::Error> {
    let topics = topics(tx, a.tarea_id, &[a.usuario_id]).await?;
    let data = json!({
        "tarea_id": a.tarea_id,
        "codigo": a.codigo,
        "efectivo_id": a.efectivo_id,
        "usuario_id": a.usuario_id,
        "accion": a.accion,
    });
    outbox::event(tx, "task_assigned", &topics, data, Some(job_id)).await?;
    Ok(())
}
