//! Efectivo events (§8): they go to `efectivos` and `efectivos.{id}`.

use serde_json::json;
use uuid::Uuid;

use crate::effects::{Tx, outbox};

pub fn topics(efectivo_id: i64) -> Vec<String> {
    vec!["efectivos".to_string(), format!("efectivos.{efectivo_id}")]
}

pub struct StatusChange<'a> {
    pub efectivo_id: i64,
    pub anterior: &'a str,
    pub nuevo: &'a str,
    pub tarea_id: Option<i64>,
    pub motivo: Option<&'a str>,
}

/// `efectivo_status_changed` `{efectivo_id, disponibilidad_anterior, disponibilidad, tarea_id?, motivo?}`.
pub async fn status_changed(tx: &mut Tx<'_>, c: StatusChange<'_>, job_id: Option<Uuid>) -> Result<(), sqlx::Error> {
    let mut data = json!({
        "efectivo_id": c.efectivo_id,
        "disponibilidad_anterior": c.anterior,
        "disponibilidad": c.nuevo,
    });
    if let Some(t) = c.tarea_id {
        data["tarea_id"] = json!(t);
    }
    if let Some(m) = c.motivo {
        data["motivo"] = json!(m);
    }
    outbox::event(tx, "efectivo_status_changed", &topics(c.efectivo_id), data, job_id).await?;
    Ok(())
}
