//! The `emergency_assigned` notification (§9.3): P0, to the dispatched unit's
//! usuario, on WebSocket always and on Telegram when the usuario is linked.
//! Delivery (and turning the buttons into callback data `n:<id>:a|r`) is the
//! broadcaster's; here only the outbox rows are written, in the payload shape
//! the task notices use (`title`, `text`, `level`, `buttons: [{label, action}]`).

use serde_json::json;
use uuid::Uuid;

use crate::effects::Tx;
use crate::effects::outbox::{self, Notification};

pub const KIND: &str = "emergency_assigned";

pub struct Assigned<'a> {
    pub recipient_usuario_id: i64,
    pub tarea_id: i64,
    pub codigo: &'a str,
    pub descripcion: Option<&'a str>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub distance_m: Option<f64>,
    /// The half-time reminder rather than the first notice.
    pub reminder: bool,
}

fn render(n: &Assigned<'_>) -> serde_json::Value {
    let distance = n
        .distance_m
        .map(|d| format!(" a {} m", d.round() as i64))
        .unwrap_or_default();
    let mut content = format!("Emergencia {}{distance}.", n.codigo);
    if let Some(d) = n.descripcion {
        content.push(' ');
        content.push_str(d);
    }
    if n.reminder {
        content = format!("Recordatorio: {content} Responda ahora.");
    }
    json!({
        "title": "EMERGENCIA",
        "text": content,
        "level": "critical",
        "tarea_id": n.tarea_id,
        "codigo": n.codigo,
        "descripcion": n.descripcion,
        "distance_m": n.distance_m,
        "location": match (n.lat, n.lng) { (Some(lat), Some(lng)) => json!({ "lat": lat, "lng": lng }), _ => json!(null) },
        "buttons": [
            { "label": "Aceptar", "action": "a" },
            { "label": "Rechazar", "action": "r" },
        ],
        "reminder": n.reminder,
    })
}

/// Writes the rows; `event_id` groups them (and makes a repeat a no-op).
pub async fn emergency_assigned(tx: &mut Tx<'_>, n: Assigned<'_>, event_id: Uuid) -> Result<(), sqlx::Error> {
    let linked: bool = sqlx::query_scalar("SELECT telegram_id IS NOT NULL FROM usuarios WHERE id = $1")
        .bind(n.recipient_usuario_id)
        .fetch_optional(&mut **tx)
        .await?
        .unwrap_or(false);
    let payload = render(&n);
    let me = n.recipient_usuario_id;
    let rows: &[(i64, &str)] = if linked {
        &[(me, "websocket"), (me, "telegram")]
    } else {
        &[(me, "websocket")]
    };
    let shared = Notification {
        event_id,
        tarea_id: Some(n.tarea_id),
        kind: KIND,
        priority: 0,
        payload: &payload,
    };
    outbox::notification(tx, &shared, rows).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_distance_descripcion_buttons_and_location() {
        let n = Assigned {
            recipient_usuario_id: 1,
            tarea_id: 7,
            codigo: "EMG-261128-0000001",
            descripcion: Some("Choque"),
            lat: Some(-34.6),
            lng: Some(-58.4),
            distance_m: Some(349.6),
            reminder: false,
        };
        let p = render(&n);
        assert_eq!(p["text"], "Emergencia EMG-261128-0000001 a 350 m. Choque");
        assert_eq!(p["buttons"].as_array().map(Vec::len), Some(2));
        assert_eq!(p["location"]["lat"], -34.6);
        let r = render(&Assigned {
            reminder: true,
            descripcion: None,
            ..n
        });
        assert!(r["text"].as_str().is_some_and(|c| c.starts_with("Recordatorio")));
    }
}
