//! Per-usuario task statistics (§6.3 Stats) and their Redis cache.
//!
//! Entries are keyed by a per-usuario version (`gad:stats:ver:{id}`) that every
//! task event increments (the outbox relay does it), so invalidation never
//! scans keys: a bumped version makes every older entry unreachable, and the
//! TTL removes it. Redis is soft: without it the figures are computed live.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::redis_conn::Redis;

/// Lifetime of a cached entry.
pub const TTL_S: u64 = 300;

pub fn version_key(user_id: i64) -> String {
    format!("gad:stats:ver:{user_id}")
}

pub fn entry_key(user_id: i64, version: u64, days: u32) -> String {
    format!("gad:stats:user:{user_id}:v{version}:days:{days}")
}

/// Only task events change what the stats count.
pub fn is_task_event(event_type: &str) -> bool {
    event_type.starts_with("task_")
}

/// The usuarios named by `user.{id}` topics.
pub fn users_in_topics<'a>(topics: impl IntoIterator<Item = &'a String>) -> BTreeSet<i64> {
    topics
        .into_iter()
        .filter_map(|t| t.strip_prefix("user.")?.parse().ok())
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Estados {
    pub programada: i64,
    pub en_curso: i64,
    pub pausada: i64,
    pub finalizada: i64,
    pub cancelada: i64,
}

/// §6.3 Stats, without `_cache` (which describes one answer, not the figures).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Stats {
    pub user_id: i64,
    pub period_days: u32,
    pub total: i64,
    pub completadas: i64,
    pub en_progreso: i64,
    pub programadas: i64,
    pub pausadas: i64,
    pub canceladas: i64,
    /// Mean `duracion_real_horas` of the finalizadas, 2 decimals; 0 when there are none.
    pub promedio_duracion_horas: f64,
    /// completadas / days, 2 decimals.
    pub productividad_diaria: f64,
    pub estados: Estados,
    #[serde(with = "crate::time::millis")]
    pub calculated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CacheInfo {
    pub hit: bool,
    /// `redis` or `db`.
    pub source: &'static str,
}

/// What `GET /api/v1/stats/user/{id}` answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StatsAnswer {
    #[serde(flatten)]
    pub stats: Stats,
    #[serde(rename = "_cache")]
    pub cache: CacheInfo,
}

#[derive(sqlx::FromRow)]
struct Counts {
    exists: bool,
    total: i64,
    programada: i64,
    en_curso: i64,
    pausada: i64,
    finalizada: i64,
    cancelada: i64,
    promedio: f64,
}

/// Own tasks (delegado, or an asignación of the usuario's efectivo) created in
/// the period and not deleted. The two halves of the union each use an index;
/// an `OR` over them would scan every tarea.
const STATS_SQL: &str = "
WITH own AS (
    SELECT id FROM tareas WHERE delegado_usuario_id = $1
    UNION
    SELECT te.tarea_id FROM tarea_efectivos te JOIN efectivos e ON e.id = te.efectivo_id WHERE e.usuario_id = $1
), period AS (
    SELECT t.estado, t.duracion_real_horas FROM tareas t JOIN own USING (id)
    WHERE t.deleted_at IS NULL AND t.created_at >= now() - make_interval(days => $2)
)
SELECT EXISTS (SELECT 1 FROM usuarios WHERE id = $1 AND deleted_at IS NULL) AS exists,
       count(*) AS total,
       count(*) FILTER (WHERE estado = 'programada') AS programada,
       count(*) FILTER (WHERE estado = 'en_curso') AS en_curso,
       count(*) FILTER (WHERE estado = 'pausada') AS pausada,
       count(*) FILTER (WHERE estado = 'finalizada') AS finalizada,
       count(*) FILTER (WHERE estado = 'cancelada') AS cancelada,
       COALESCE(round(avg(duracion_real_horas) FILTER (WHERE estado = 'finalizada'), 2), 0)::float8 AS promedio
FROM period";

/// The figures from PostgreSQL; `None` when the usuario does not exist.
pub async fn compute(db: &PgPool, user_id: i64, days: u32) -> Result<Option<Stats>, sqlx::Error> {
    let c: Counts = sqlx::query_as(STATS_SQL)
        .bind(user_id)
        .bind(days as i32)
        .fetch_one(db)
        .await?;
    if !c.exists {
        return Ok(None);
    }
    Ok(Some(Stats {
        user_id,
        period_days: days,
        total: c.total,
        completadas: c.finalizada,
        en_progreso: c.en_curso,
        programadas: c.programada,
        pausadas: c.pausada,
        canceladas: c.cancelada,
        promedio_duracion_horas: c.promedio,
        productividad_diaria: round2(c.finalizada as f64 / f64::from(days.max(1))),
        estados: Estados {
            programada: c.programada,
            en_curso: c.en_curso,
            pausada: c.pausada,
            finalizada: c.finalizada,
            cancelada: c.cancelada,
        },
        calculated_at: Utc::now(),
    }))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The stats of `user_id` over `days`: from the cache when allowed and
/// present, else computed (and cached when Redis is reachable). `None` when
/// the usuario does not exist.
pub async fn load(
    db: &PgPool,
    redis: &Redis,
    user_id: i64,
    days: u32,
    use_cache: bool,
) -> Result<Option<StatsAnswer>, sqlx::Error> {
    let mut conn = redis.conn().await;
    let key = match conn.as_mut() {
        Some(c) => match version(c, user_id).await {
            Ok(v) => Some(entry_key(user_id, v, days)),
            Err(e) => {
                tracing::warn!(error = %e, "stats cache unavailable; computing live");
                None
            }
        },
        None => None,
    };
    if use_cache
        && let (Some(c), Some(key)) = (conn.as_mut(), key.as_deref())
        && let Some(stats) = cached(c, key).await
    {
        count("hit");
        return Ok(Some(StatsAnswer {
            stats,
            cache: CacheInfo {
                hit: true,
                source: "redis",
            },
        }));
    }
    count(match (use_cache, key.is_some()) {
        (false, _) => "bypass",
        (true, false) => "unavailable",
        (true, true) => "miss",
    });
    let Some(stats) = compute(db, user_id, days).await? else {
        return Ok(None);
    };
    if let (Some(c), Some(key)) = (conn.as_mut(), key.as_deref()) {
        store(c, key, &stats).await;
    }
    Ok(Some(StatsAnswer {
        stats,
        cache: CacheInfo {
            hit: false,
            source: "db",
        },
    }))
}

fn count(result: &'static str) {
    metrics::counter!(crate::metric_names::CACHE_REQUESTS, "cache" => "stats", "result" => result).increment(1);
}

async fn version(conn: &mut ConnectionManager, user_id: i64) -> redis::RedisResult<u64> {
    let v: Option<u64> = redis::cmd("GET").arg(version_key(user_id)).query_async(conn).await?;
    Ok(v.unwrap_or(0))
}

/// A readable entry, or `None` (absent, unreadable, or Redis failing).
async fn cached(conn: &mut ConnectionManager, key: &str) -> Option<Stats> {
    let raw: Option<String> = match redis::cmd("GET").arg(key).query_async(conn).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "stats cache read failed");
            return None;
        }
    };
    serde_json::from_str(&raw?).ok()
}

async fn store(conn: &mut ConnectionManager, key: &str, stats: &Stats) {
    let Ok(value) = serde_json::to_string(stats) else {
        return;
    };
    let set: redis::RedisResult<()> = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .arg("EX")
        .arg(TTL_S)
        .query_async(conn)
        .await;
    if let Err(e) = set {
        tracing::warn!(error = %e, "stats cache write failed");
    }
}

/// Makes every cached entry of each usuario unreachable (one round trip).
pub async fn bump(conn: &mut ConnectionManager, user_ids: &BTreeSet<i64>) -> redis::RedisResult<()> {
    if user_ids.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for id in user_ids {
        pipe.cmd("INCR").arg(version_key(*id)).ignore();
    }
    pipe.query_async(conn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_contract() {
        assert_eq!(version_key(42), "gad:stats:ver:42");
        assert_eq!(entry_key(42, 3, 30), "gad:stats:user:42:v3:days:30");
    }

    #[test]
    fn only_user_topics_name_usuarios() {
        let topics: Vec<String> = [
            "tasks",
            "tasks.9",
            "user.7",
            "user.12",
            "user.x",
            "user.7",
            "efectivos.7",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(users_in_topics(&topics), BTreeSet::from([7, 12]));
        assert!(is_task_event("task_status_changed"));
        assert!(!is_task_event("efectivo_status_changed"));
    }

    #[test]
    fn the_answer_has_the_stats_shape_with_cache_info() {
        let stats = Stats {
            user_id: 1,
            period_days: 30,
            total: 3,
            completadas: 1,
            en_progreso: 1,
            programadas: 1,
            pausadas: 0,
            canceladas: 0,
            promedio_duracion_horas: 1.5,
            productividad_diaria: round2(1.0 / 30.0),
            estados: Estados {
                programada: 1,
                en_curso: 1,
                pausada: 0,
                finalizada: 1,
                cancelada: 0,
            },
            calculated_at: Utc::now(),
        };
        let v = serde_json::json!(StatsAnswer {
            stats: stats.clone(),
            cache: CacheInfo {
                hit: false,
                source: "db"
            }
        });
        assert_eq!(v["productividad_diaria"], 0.03);
        assert_eq!(v["estados"]["en_curso"], 1);
        assert_eq!(v["_cache"], serde_json::json!({"hit": false, "source": "db"}));
        let back: Stats = serde_json::from_value(v).unwrap_or_else(|_| stats.clone());
        assert_eq!(back.total, 3);
    }
}
