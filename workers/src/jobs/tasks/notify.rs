//! Notifications and alerts of task jobs (§9.3). Each notification is one
//! row per recipient and channel: always `websocket`, and `telegram` too
//! when the usuario linked a chat. The broadcaster renders and delivers
//! them after commit. Alerts are also one `alert` event on `alerts`.

use gad_shared::domain::tarea::Tarea;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::effects::Tx;
use crate::effects::outbox::{self, Notification};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipient {
    pub usuario_id: i64,
    pub telegram_id: Option<i64>,
}

/// Supervisors who want supervision notices: nivel ≥ 2, active, and
/// `notif_supervision` not switched off (it defaults to on).
pub async fn supervisors(tx: &mut Tx<'_>) -> Result<Vec<Recipient>, sqlx::Error> {
    let rows: Vec<(i64, Option<i64>)> = sqlx::query_as(
        "SELECT id, telegram_id FROM usuarios
         WHERE nivel >= 2 AND deleted_at IS NULL AND verificado
           AND extra_data -> 'notif_supervision' IS DISTINCT FROM 'false'::jsonb
         ORDER BY id",
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(usuario_id, telegram_id)| Recipient {
            usuario_id,
            telegram_id,
        })
        .collect())
}

/// Live usuarios among `ids`, with their Telegram chats.
pub async fn usuarios(tx: &mut Tx<'_>, ids: &[i64]) -> Result<Vec<Recipient>, sqlx::Error> {
    let rows: Vec<(i64, Option<i64>)> =
        sqlx::query_as("SELECT id, telegram_id FROM usuarios WHERE id = ANY($1) AND deleted_at IS NULL ORDER BY id")
            .bind(ids)
            .fetch_all(&mut **tx)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(usuario_id, telegram_id)| Recipient {
            usuario_id,
            telegram_id,
        })
        .collect())
}

/// Adds `more` to `list`, each usuario once.
pub fn merge(list: &mut Vec<Recipient>, more: Vec<Recipient>) {
    for r in more {
        if !list.iter().any(|x| x.usuario_id == r.usuario_id) {
            list.push(r);
        }
    }
}

pub struct Notice<'a> {
    /// Groups the rows of one notification; derived from the job so a rerun
    /// writes the same rows (they are unique per event, recipient and channel).
    pub event_id: Uuid,
    pub kind: &'a str,
    pub priority: i16,
    pub tarea_id: Option<i64>,
    pub payload: Value,
}

pub async fn send(tx: &mut Tx<'_>, notice: &Notice<'_>, to: &[Recipient]) -> Result<(), sqlx::Error> {
    let mut rows = Vec::with_capacity(to.len() * 2);
    for r in to {
        rows.push((r.usuario_id, "websocket"));
        if r.telegram_id.is_some() {
            rows.push((r.usuario_id, "telegram"));
        }
    }
    let shared = Notification {
        event_id: notice.event_id,
        tarea_id: notice.tarea_id,
        kind: notice.kind,
        priority: notice.priority,
        payload: &notice.payload,
    };
    outbox::notification(tx, &shared, &rows).await
}

/// A stable id for the notification `what` of job `job_id`.
pub fn event_id(job_id: Uuid, what: &str) -> Uuid {
    Uuid::new_v5(&job_id, what.as_bytes())
}

pub const PRIORIDADES: [&str; 5] = ["BAJA", "MEDIA", "ALTA", "URGENTE", "CRITICA"];

pub fn prioridad_label(p: i16) -> &'static str {
    usize::try_from(p - 1)
        .ok()
        .and_then(|i| PRIORIDADES.get(i))
        .copied()
        .unwrap_or("MEDIA")
}

/// What the assignee sees (§9.3 `task_assigned`): the task, its place, and
/// Accept / Decline. Texts are plain; the Telegram sender escapes them.
pub fn task_assigned_payload(t: &Tarea, efectivo_id: i64) -> Value {
    let mut text = format!(
        "{} — {}\nTipo: {}\nPrioridad: {}\nInicio: {}",
        t.codigo,
        t.titulo,
        t.tipo,
        prioridad_label(t.prioridad),
        gad_shared::time::format(&t.inicio_programado)
    );
    if let Some(d) = &t.ubicacion_descripcion {
        text.push_str(&format!("\nLugar: {d}"));
    }
    json!({
        "title": "Nueva tarea asignada",
        "text": text,
        "level": if t.prioridad >= 4 { "warning" } else { "info" },
        "tarea_id": t.id,
        "codigo": t.codigo,
        "efectivo_id": efectivo_id,
        "location": location(t),
        "buttons": [{ "label": "Aceptar", "action": "a" }, { "label": "Rechazar", "action": "r" }],
    })
}

fn location(t: &Tarea) -> Value {
    match (t.ubicacion_lat, t.ubicacion_lon) {
        (Some(lat), Some(lng)) => json!({ "lat": lat, "lng": lng }),
        _ => Value::Null,
    }
}

/// A notice with a title and a text, no buttons.
pub fn plain_payload(title: &str, text: String, level: &str, t: &Tarea) -> Value {
    json!({ "title": title, "text": text, "level": level, "tarea_id": t.id, "codigo": t.codigo, "buttons": [] })
}

pub struct Alert<'a> {
    pub kind: &'a str,
    pub title: String,
    pub content: String,
    pub level: &'a str,
    pub tarea_id: Option<i64>,
    pub efectivo_id: Option<i64>,
}

/// The `alert` event on `alerts` (§8) and its notification rows to the
/// supervisors who want them, under one id.
pub async fn alert(
    tx: &mut Tx<'_>,
    a: Alert<'_>,
    alert_id: Uuid,
    priority: i16,
    job_id: Uuid,
) -> Result<(), sqlx::Error> {
    let data = json!({
        "alert_id": alert_id,
        "kind": a.kind,
        "title": a.title,
        "content": a.content,
        "level": a.level,
        "tarea_id": a.tarea_id,
        "efectivo_id": a.efectivo_id,
    });
    outbox::event(tx, "alert", &["alerts".to_string()], data, Some(job_id)).await?;
    let to = supervisors(tx).await?;
    let notice = Notice {
        event_id: alert_id,
        kind: a.kind,
        priority,
        tarea_id: a.tarea_id,
        payload: json!({ "title": a.title, "text": a.content, "level": a.level, "tarea_id": a.tarea_id,
                          "efectivo_id": a.efectivo_id, "buttons": [] }),
    };
    send(tx, &notice, &to).await
}

/// "Nombre Apellido" of a usuario, for notice texts.
pub async fn display_name(tx: &mut Tx<'_>, usuario_id: i64) -> Result<String, sqlx::Error> {
    let name: Option<String> = sqlx::query_scalar("SELECT nombre || ' ' || apellido FROM usuarios WHERE id = $1")
        .bind(usuario_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(name.unwrap_or_else(|| format!("usuario {usuario_id}")))
}
