//! Read model of efectivo rows: the §6.3 Efectivo shape, with `lat`/`lng`
//! derived from the `ubicacion` geography (NULL when the position is unknown).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// The availability labels, exactly as stored (`estado_disponibilidad`).
pub const DISPONIBILIDADES: [&str; 4] = ["disponible", "en_tarea", "fuera_servicio", "no_disponible"];

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Efectivo {
    pub id: i64,
    pub uuid: Uuid,
    pub usuario_id: i64,
    pub codigo_interno: String,
    pub rango: Option<String>,
    pub unidad: Option<String>,
    pub especialidad: Option<String>,
    pub disponibilidad: String,
    #[serde(with = "crate::time::millis")]
    pub ultima_actualizacion_estado: DateTime<Utc>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    #[serde(with = "crate::time::option_millis")]
    pub ubicacion_actualizada_en: Option<DateTime<Utc>>,
    #[serde(with = "crate::time::millis")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::time::millis")]
    pub updated_at: DateTime<Utc>,
}

/// The columns of [`Efectivo`] from `efectivos e`; append `WHERE …`.
pub const SELECT: &str = "\
SELECT e.id, e.uuid, e.usuario_id, e.codigo_interno, e.rango, e.unidad, e.especialidad,
       e.disponibilidad::text AS disponibilidad, e.ultima_actualizacion_estado,
       ST_Y(e.ubicacion::geometry) AS lat, ST_X(e.ubicacion::geometry) AS lng,
       e.ubicacion_actualizada_en, e.created_at, e.updated_at
FROM efectivos e";

/// [`SELECT`] with a fixed condition (never request text: it is SQL).
pub fn select_where(condition: &'static str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("{SELECT} WHERE {condition}"))
}

/// A live (not soft-deleted) efectivo by id.
pub async fn by_id<'e, E>(db: E, id: i64) -> Result<Option<Efectivo>, sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    sqlx::query_as::<_, Efectivo>(select_where("e.id = $1 AND e.deleted_at IS NULL"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The live efectivo of a usuario (1:1), if it has one.
pub async fn by_usuario<'e, E>(db: E, usuario_id: i64) -> Result<Option<Efectivo>, sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    sqlx::query_as::<_, Efectivo>(select_where("e.usuario_id = $1 AND e.deleted_at IS NULL"))
        .bind(usuario_id)
        .fetch_optional(db)
        .await
}

/// The held rule of §3: a non-rechazada asignación on a tarea that is en_curso
/// or pausada, or on an emergencia that is still programada. Bind `$1` = efectivo id.
pub const HELD_SQL: &str = "\
SELECT EXISTS (
    SELECT 1 FROM tarea_efectivos te JOIN tareas t ON t.id = te.tarea_id
    WHERE te.efectivo_id = $1 AND te.respuesta <> 'rechazada' AND t.deleted_at IS NULL
      AND (t.estado IN ('en_curso', 'pausada') OR (t.tipo = 'emergencia' AND t.estado = 'programada')))";

pub async fn is_held<'e, E>(db: E, efectivo_id: i64) -> Result<bool, sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    sqlx::query_scalar(HELD_SQL).bind(efectivo_id).fetch_one(db).await
}
