//! `historial_estados`: one row per estado change, creation included.

use uuid::Uuid;

use super::Tx;

pub struct Change<'a> {
    pub tarea_id: i64,
    /// `None` only on the creation row.
    pub anterior: Option<&'a str>,
    pub nuevo: &'a str,
    /// `None` = the system.
    pub usuario_id: Option<i64>,
    pub motivo: Option<&'a str>,
    pub job_id: Option<Uuid>,
}

pub async fn record(tx: &mut Tx<'_>, c: Change<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO historial_estados (tarea_id, estado_anterior, estado_nuevo, usuario_id, motivo, job_id)
         VALUES ($1, $2::estado_tarea, $3::estado_tarea, $4, $5, $6)",
    )
    .bind(c.tarea_id)
    .bind(c.anterior)
    .bind(c.nuevo)
    .bind(c.usuario_id)
    .bind(c.motivo)
    .bind(c.job_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
