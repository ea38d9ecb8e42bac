//! Read model of tareas (§6.3 Tarea shape) and of their historial, shared by
//! ingress (direct reads) and workers (job results and event payloads), so
//! every path answers with the same JSON.
//!
//! Derived fields are computed in SQL, in the same statement that reads the
//! row, so a job result built inside a transaction sees the row it just wrote.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

/// `estado_tarea` labels that count as active (§1).
pub const ACTIVE: [&str; 3] = ["programada", "en_curso", "pausada"];
/// Every `estado_tarea` label.
pub const ESTADOS: [&str; 5] = ["programada", "en_curso", "pausada", "finalizada", "cancelada"];
/// Every `tipo_tarea` label; `emergencia` only emergency dispatch may create.
pub const TIPOS: [&str; 7] = [
    "patrullaje",
    "investigacion",
    "vigilancia",
    "intervencion",
    "administrativa",
    "entrenamiento",
    "emergencia",
];

pub fn is_terminal(estado: &str) -> bool {
    matches!(estado, "finalizada" | "cancelada")
}

/// `^[A-Z0-9_-]{3,20}$`, checked after trimming and upper-casing (§7).
pub fn is_valid_codigo(codigo: &str) -> bool {
    (3..=20).contains(&codigo.len())
        && codigo
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

pub fn normalize_codigo(raw: &str) -> String {
    raw.trim().to_uppercase()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Tarea {
    pub id: i64,
    pub uuid: Uuid,
    pub codigo: String,
    pub titulo: String,
    pub descripcion: Option<String>,
    pub tipo: String,
    pub prioridad: i16,
    pub estado: String,
    pub origen: String,
    pub delegado_usuario_id: i64,
    pub creado_por_usuario_id: i64,
    #[serde(with = "crate::time::millis")]
    pub inicio_programado: DateTime<Utc>,
    #[serde(with = "crate::time::option_millis")]
    pub fin_programado: Option<DateTime<Utc>>,
    #[serde(with = "crate::time::option_millis")]
    pub inicio_real: Option<DateTime<Utc>>,
    #[serde(with = "crate::time::option_millis")]
    pub fin_real: Option<DateTime<Utc>>,
    #[serde(with = "crate::time::option_millis")]
    pub pausado_en: Option<DateTime<Utc>>,
    /// Closed pauses plus the open one, whole seconds.
    pub tiempo_pausado_segundos: i64,
    pub ubicacion_lat: Option<f64>,
    pub ubicacion_lon: Option<f64>,
    pub ubicacion_descripcion: Option<String>,
    /// From `tarea_efectivos`, ascending.
    pub efectivos_asignados: Vec<i64>,
    pub duracion_real_horas: Option<f64>,
    pub duracion_estimada_horas: f64,
    pub esta_retrasada: bool,
    pub esta_activa: bool,
    pub esta_completada: bool,
    #[serde(with = "crate::time::millis")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::time::millis")]
    pub updated_at: DateTime<Utc>,
}

/// The SELECT list of [`Tarea`] over `tareas t`; a macro so that statements
/// can be assembled with `concat!` and stay `&'static str`.
macro_rules! select_tarea {
    () => {
        "SELECT t.id, t.uuid, t.codigo, t.titulo, t.descripcion, t.tipo::text AS tipo, t.prioridad,
       t.estado::text AS estado, t.origen, t.delegado_usuario_id, t.creado_por_usuario_id,
       t.inicio_programado, t.fin_programado, t.inicio_real, t.fin_real, t.pausado_en,
       floor(extract(epoch FROM t.tiempo_pausado
             + CASE WHEN t.estado = 'pausada' AND t.pausado_en IS NOT NULL
                    THEN greatest(now() - t.pausado_en, interval '0') ELSE interval '0' END))::bigint
           AS tiempo_pausado_segundos,
       ST_Y(t.ubicacion::geometry) AS ubicacion_lat, ST_X(t.ubicacion::geometry) AS ubicacion_lon,
       t.ubicacion_descripcion,
       COALESCE((SELECT array_agg(te.efectivo_id ORDER BY te.efectivo_id)
                 FROM tarea_efectivos te WHERE te.tarea_id = t.id), '{}'::bigint[]) AS efectivos_asignados,
       CASE WHEN t.estado = 'finalizada' THEN t.duracion_real_horas::float8 END AS duracion_real_horas,
       round(CASE WHEN t.fin_programado IS NOT NULL
                  THEN extract(epoch FROM t.fin_programado - t.inicio_programado) / 3600
                  ELSE 2.0 + (5 - t.prioridad) * 0.5 END, 2)::float8 AS duracion_estimada_horas,
       CASE WHEN t.inicio_real IS NOT NULL THEN t.inicio_real > t.inicio_programado
            ELSE t.estado = 'programada' AND now() > t.inicio_programado END AS esta_retrasada,
       t.estado IN ('programada', 'en_curso', 'pausada') AS esta_activa,
       t.estado = 'finalizada' AS esta_completada,
       t.created_at, t.updated_at
FROM tareas t"
    };
}

/// Whether usuario `$n` owns `t` (§1 "own task"): delegado, or its efectivo
/// has an asignación on it (of any respuesta).
macro_rules! own_task {
    ($n:literal) => {
        concat!(
            "(t.delegado_usuario_id = $",
            $n,
            " OR EXISTS (SELECT 1 FROM tarea_efectivos te
               JOIN efectivos e ON e.id = te.efectivo_id AND e.deleted_at IS NULL
             WHERE te.tarea_id = t.id AND e.usuario_id = $",
            $n,
            "))"
        )
    };
}

/// A live (not deleted) tarea.
pub async fn find<'e>(db: impl PgExecutor<'e>, id: i64) -> Result<Option<Tarea>, sqlx::Error> {
    sqlx::query_as(concat!(select_tarea!(), " WHERE t.id = $1 AND t.deleted_at IS NULL"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// A tarea deleted or not: what a job that just soft-deleted it answers with.
pub async fn find_any<'e>(db: impl PgExecutor<'e>, id: i64) -> Result<Option<Tarea>, sqlx::Error> {
    sqlx::query_as(concat!(select_tarea!(), " WHERE t.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// A live tarea, if usuario `viewer` may see it: `None` for a nivel ≥ 2
/// viewer means any tarea; `Some(u)` restricts to `u`'s own tasks.
pub async fn find_visible<'e>(
    db: impl PgExecutor<'e>,
    id: i64,
    own_for: Option<i64>,
) -> Result<Option<Tarea>, sqlx::Error> {
    match own_for {
        None => find(db, id).await,
        Some(u) => {
            sqlx::query_as(concat!(
                select_tarea!(),
                " WHERE t.id = $1 AND t.deleted_at IS NULL AND ",
                own_task!(2)
            ))
            .bind(id)
            .bind(u)
            .fetch_optional(db)
            .await
        }
    }
}

/// Whether the tarea is `usuario`'s own task (deleted or not).
pub async fn is_own<'e>(db: impl PgExecutor<'e>, id: i64, usuario: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(concat!(
        "SELECT EXISTS (SELECT 1 FROM tareas t WHERE t.id = $1 AND ",
        own_task!(2),
        ")"
    ))
    .bind(id)
    .bind(usuario)
    .fetch_one(db)
    .await
}

/// `GET /api/v1/tasks` filters (§6.3), already validated.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub estados: Vec<String>,
    pub tipo: Option<String>,
    pub prioridad_min: Option<i16>,
    pub delegado_usuario_id: Option<i64>,
    pub efectivo_id: Option<i64>,
    /// Exact, already upper-cased.
    pub codigo: Option<String>,
    /// `created_at` bounds, both inclusive.
    pub desde: Option<DateTime<Utc>>,
    pub hasta: Option<DateTime<Utc>>,
    /// Substring of codigo or titulo, case-insensitive.
    pub q: Option<String>,
    /// Only this usuario's own tasks (nivel 1 callers).
    pub own_for: Option<i64>,
}

fn push_filters(qb: &mut QueryBuilder<Postgres>, f: &ListFilter) {
    qb.push(" WHERE t.deleted_at IS NULL");
    if let Some(u) = f.own_for {
        qb.push(" AND (t.delegado_usuario_id = ").push_bind(u);
        qb.push(
            " OR EXISTS (SELECT 1 FROM tarea_efectivos te JOIN efectivos e ON e.id = te.efectivo_id AND e.deleted_at IS NULL
               WHERE te.tarea_id = t.id AND e.usuario_id = ",
        )
        .push_bind(u)
        .push("))");
    }
    if !f.estados.is_empty() {
        qb.push(" AND t.estado = ANY(")
            .push_bind(f.estados.clone())
            .push("::estado_tarea[])");
    }
    if let Some(tipo) = &f.tipo {
        qb.push(" AND t.tipo = ").push_bind(tipo.clone()).push("::tipo_tarea");
    }
    if let Some(p) = f.prioridad_min {
        qb.push(" AND t.prioridad >= ").push_bind(p);
    }
    if let Some(d) = f.delegado_usuario_id {
        qb.push(" AND t.delegado_usuario_id = ").push_bind(d);
    }
    if let Some(e) = f.efectivo_id {
        qb.push(" AND EXISTS (SELECT 1 FROM tarea_efectivos tf WHERE tf.tarea_id = t.id AND tf.efectivo_id = ")
            .push_bind(e)
            .push(")");
    }
    if let Some(c) = &f.codigo {
        qb.push(" AND t.codigo = ").push_bind(c.clone());
    }
    if let Some(d) = f.desde {
        qb.push(" AND t.created_at >= ").push_bind(d);
    }
    if let Some(h) = f.hasta {
        qb.push(" AND t.created_at <= ").push_bind(h);
    }
    if let Some(q) = &f.q {
        let pattern = format!("%{}%", escape_like(q));
        qb.push(" AND (t.codigo ILIKE ")
            .push_bind(pattern.clone())
            .push(" OR t.titulo ILIKE ")
            .push_bind(pattern)
            .push(")");
    }
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One page of tareas, newest first, and the total matching the filter.
pub async fn list(db: &sqlx::PgPool, f: &ListFilter, skip: i64, limit: i64) -> Result<(Vec<Tarea>, i64), sqlx::Error> {
    let mut count = QueryBuilder::<Postgres>::new("SELECT count(*) FROM tareas t");
    push_filters(&mut count, f);
    let total: i64 = count.build_query_scalar().fetch_one(db).await?;
    let mut page = QueryBuilder::<Postgres>::new(select_tarea!());
    push_filters(&mut page, f);
    page.push(" ORDER BY t.created_at DESC, t.id DESC OFFSET ")
        .push_bind(skip)
        .push(" LIMIT ")
        .push_bind(limit);
    let rows = page.build_query_as::<Tarea>().fetch_all(db).await?;
    Ok((rows, total))
}

/// One `historial_estados` row as `GET /api/v1/tasks/{id}/history` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct HistorialEntry {
    pub id: i64,
    pub estado_anterior: Option<String>,
    pub estado_nuevo: String,
    pub usuario_id: Option<i64>,
    pub motivo: Option<String>,
    pub job_id: Option<Uuid>,
    #[serde(with = "crate::time::millis")]
    pub created_at: DateTime<Utc>,
}

/// Oldest first. Ordered by id, not created_at: rows of one tarea are written
/// under its row lock, so ids follow commit order, while `created_at` is the
/// transaction's start and can be earlier than a row committed before it.
pub async fn history<'e>(db: impl PgExecutor<'e>, tarea_id: i64) -> Result<Vec<HistorialEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, estado_anterior::text AS estado_anterior, estado_nuevo::text AS estado_nuevo, usuario_id, motivo,
                job_id, created_at
         FROM historial_estados WHERE tarea_id = $1 ORDER BY id",
    )
    .bind(tarea_id)
    .fetch_all(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codigo_rule_applies_after_upper_casing() {
        assert!(is_valid_codigo(&normalize_codigo("  pat-001 ")));
        assert!(!is_valid_codigo(&normalize_codigo("ab")));
        assert!(!is_valid_codigo(&normalize_codigo("ABC!")));
        assert!(!is_valid_codigo(&normalize_codigo("Ñandú-1")));
        assert!(!is_valid_codigo(&"A".repeat(21)));
        assert!(is_valid_codigo(&"A".repeat(20)));
    }

    #[test]
    fn like_wildcards_are_literal() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
    }
}
