//! Alerts to supervisors (§8 `alert`, §9.3): one event on `alerts`, plus a
//! Telegram notification row for each linked supervisor who has not opted
//! out of `notif_supervision`, for the kinds §9.3 sends to supervisors.

use serde_json::json;
use uuid::Uuid;

use crate::effects::Tx;
use crate::effects::outbox::{self, Notification};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Alert<'a> {
    /// `emergency_created`, `emergency_unassigned`, `assignment_declined`, `ack_timeout`, …
    pub kind: &'a str,
    pub title: String,
    pub content: String,
    pub level: Level,
    pub tarea_id: Option<i64>,
    pub efectivo_id: Option<i64>,
}

/// The alert kinds §9.3 also delivers to supervisors as notifications.
fn notifies_supervisors(kind: &str) -> bool {
    matches!(
        kind,
        "assignment_declined" | "ack_timeout" | "emergency_unassigned" | "delivery_failed"
    )
}

/// Supervisors who get alert notifications: nivel ≥ 2, active, Telegram-linked,
/// `notif_supervision` not switched off (default on).
const LINKED_SUPERVISORS_SQL: &str = "\
SELECT id FROM usuarios
WHERE nivel >= 2 AND deleted_at IS NULL AND verificado AND telegram_id IS NOT NULL
  AND COALESCE(extra_data->'notif_supervision', 'true'::jsonb) <> 'false'::jsonb
ORDER BY id";

/// Writes the alert in `tx`; returns its `alert_id`.
pub async fn raise(tx: &mut Tx<'_>, a: Alert<'_>, job_id: Option<Uuid>) -> Result<Uuid, sqlx::Error> {
    let alert_id = Uuid::now_v7();
    let mut data = json!({
        "alert_id": alert_id,
        "kind": a.kind,
        "title": a.title,
        "content": a.content,
        "level": a.level.as_str(),
    });
    if let Some(t) = a.tarea_id {
        data["tarea_id"] = json!(t);
    }
    if let Some(e) = a.efectivo_id {
        data["efectivo_id"] = json!(e);
    }
    outbox::event(tx, "alert", &["alerts".to_string()], data.clone(), job_id).await?;
    if notifies_supervisors(a.kind) {
        // Supervisors see the `alerts` topic over WebSocket; Telegram reaches them elsewhere.
        let recipients: Vec<i64> = sqlx::query_scalar(LINKED_SUPERVISORS_SQL).fetch_all(&mut **tx).await?;
        // The notice shape every notification row uses.
        let payload = json!({
            "title": data["title"], "text": data["content"], "level": data["level"], "alert_id": alert_id,
            "tarea_id": a.tarea_id, "efectivo_id": a.efectivo_id, "buttons": [],
        });
        let rows: Vec<(i64, &str)> = recipients.into_iter().map(|r| (r, "telegram")).collect();
        let shared = Notification {
            event_id: alert_id,
            tarea_id: a.tarea_id,
            kind: a.kind,
            priority: 0,
            payload: &payload,
        };
        outbox::notification(tx, &shared, &rows).await?;
    }
    Ok(alert_id)
}
