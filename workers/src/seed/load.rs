//! Replaces the seed rows in one transaction: stage the generated rows with
//! COPY into temporary tables, then merge them with set-based SQL.
//!
//! Tareas (with their asignaciones and historial) are deleted and re-inserted.
//! Seed usuarios and efectivos are instead updated in place, keyed by email
//! and codigo_interno: audit_log rows (append-only) and other non-seed rows may
//! reference them, e.g. after someone logged in as `admin1`, so deleting them
//! would fail. It also keeps their ids, and so the fixed logins, stable.

use sqlx::{PgConnection, PgPool};

use super::copy::copy_in;
use super::people::Staff;
use super::tasks::Plan;

pub(crate) struct Counts {
    pub usuarios: u64,
    pub efectivos: u64,
    pub tareas: u64,
    pub asignaciones: u64,
    pub historial: u64,
}

const STAGING: &str = r#"
CREATE TEMP TABLE seed_usuarios (
    ord int, uuid uuid, dni varchar(20), nombre varchar(100), apellido varchar(100), email varchar(254), nivel smallint
) ON COMMIT DROP;
CREATE TEMP TABLE seed_efectivos (
    ord int, uuid uuid, owner_dni varchar(20), codigo_interno varchar(50), rango varchar(50), unidad varchar(100),
    especialidad varchar(100), disponibilidad estado_disponibilidad, ultima_actualizacion_estado timestamptz,
    ubicacion geography(Point, 4326), ubicacion_actualizada_en timestamptz, ubicacion_precision_m real
) ON COMMIT DROP;
CREATE TEMP TABLE seed_tareas (
    ord int, uuid uuid, codigo varchar(20), titulo varchar(200), descripcion text, tipo tipo_tarea, prioridad smallint,
    estado estado_tarea, inicio_programado timestamptz, fin_programado timestamptz, inicio_real timestamptz,
    fin_real timestamptz, pausado_en timestamptz, tiempo_pausado interval, delegado_dni varchar(20),
    creador_dni varchar(20), ubicacion geography(Point, 4326), ubicacion_descripcion varchar(200),
    created_at timestamptz, updated_at timestamptz
) ON COMMIT DROP;
CREATE TEMP TABLE seed_asignaciones (
    codigo varchar(20), codigo_interno varchar(50), asignado_por_dni varchar(20), asignado_en timestamptz,
    respuesta respuesta_asignacion, respondida_en timestamptz
) ON COMMIT DROP;
CREATE TEMP TABLE seed_historial (
    ord int, codigo varchar(20), estado_anterior estado_tarea, estado_nuevo estado_tarea, usuario_dni varchar(20),
    motivo text, created_at timestamptz
) ON COMMIT DROP;
"#;

/// Children first; notifications about seed tareas go with them.
const DELETE_SEED_TAREAS: &str = r#"
DELETE FROM notifications n USING tareas t WHERE n.tarea_id = t.id AND t.origen = 'seed';
DELETE FROM historial_estados h USING tareas t WHERE h.tarea_id = t.id AND t.origen = 'seed';
DELETE FROM tarea_efectivos a USING tareas t WHERE a.tarea_id = t.id AND t.origen = 'seed';
DELETE FROM tareas WHERE origen = 'seed';
"#;

/// Seed usuarios a previous, larger run created that this run does not.
const FIND_SURPLUS: &str = r#"
CREATE TEMP TABLE seed_surplus ON COMMIT DROP AS
    SELECT u.id FROM usuarios u
    WHERE u.extra_data @> '{"seed": true}'
      AND NOT EXISTS (SELECT 1 FROM seed_usuarios s WHERE lower(s.email) = lower(u.email));
ANALYZE seed_surplus;
"#;

/// Surplus rows are removed when nothing else points at them, otherwise
/// soft-deleted (hidden everywhere). Every check is driven by the surplus set
/// and is a separate anti-join: a correlated OR would rescan tareas per row.
const RETIRE_SURPLUS: &str = r#"
DELETE FROM telegram_links l USING seed_surplus s WHERE l.usuario_id = s.id;
DELETE FROM notifications n USING seed_surplus s WHERE n.recipient_usuario_id = s.id;
DELETE FROM efectivos e USING seed_surplus s
    WHERE e.usuario_id = s.id AND e.metadata @> '{"seed": true}'
      AND NOT EXISTS (SELECT 1 FROM tarea_efectivos a WHERE a.efectivo_id = e.id);
UPDATE efectivos e SET deleted_at = now() FROM seed_surplus s
    WHERE e.usuario_id = s.id AND e.metadata @> '{"seed": true}' AND e.deleted_at IS NULL;
DELETE FROM usuarios u USING seed_surplus s
    WHERE u.id = s.id
      AND NOT EXISTS (SELECT 1 FROM efectivos e WHERE e.usuario_id = u.id)
      AND NOT EXISTS (SELECT 1 FROM tareas t WHERE t.delegado_usuario_id = u.id)
      AND NOT EXISTS (SELECT 1 FROM tareas t WHERE t.creado_por_usuario_id = u.id)
      AND NOT EXISTS (SELECT 1 FROM tarea_efectivos a WHERE a.asignado_por_usuario_id = u.id)
      AND NOT EXISTS (SELECT 1 FROM historial_estados h WHERE h.usuario_id = u.id)
      AND NOT EXISTS (SELECT 1 FROM audit_log l WHERE l.actor_usuario_id = u.id)
      AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.submitted_by = u.id);
UPDATE usuarios u SET deleted_at = now() FROM seed_surplus s WHERE u.id = s.id AND u.deleted_at IS NULL;
"#;

/// Existing seed usuarios keep their id and uuid; everything else is reset,
/// including Telegram links and lockouts (seeded usuarios are never linked).
/// A non-seed row with a seed email makes the INSERT fail on the unique index.
const MERGE_USUARIOS: [&str; 2] = [
    r#"UPDATE usuarios u SET dni = s.dni, nombre = s.nombre, apellido = s.apellido, nivel = s.nivel,
        hashed_password = $1, verificado = true, telefono = NULL, telegram_id = NULL, intentos_fallidos = 0,
        bloqueado_hasta = NULL, ultimo_acceso = NULL, tokens_validos_desde = now(),
        extra_data = '{"seed": true}', deleted_at = NULL
    FROM seed_usuarios s
    WHERE lower(u.email) = lower(s.email) AND u.extra_data @> '{"seed": true}'"#,
    r#"INSERT INTO usuarios (uuid, dni, nombre, apellido, email, nivel, hashed_password, verificado, extra_data)
    SELECT s.uuid, s.dni, s.nombre, s.apellido, s.email, s.nivel, $1, true, '{"seed": true}'
    FROM seed_usuarios s
    WHERE NOT EXISTS (SELECT 1 FROM usuarios u
                      WHERE lower(u.email) = lower(s.email) AND u.extra_data @> '{"seed": true}')
    ORDER BY s.ord"#,
];

const UPDATE_EFECTIVOS: &str = r#"UPDATE efectivos e SET usuario_id = u.id, rango = s.rango, unidad = s.unidad, especialidad = s.especialidad,
        disponibilidad = s.disponibilidad, ultima_actualizacion_estado = s.ultima_actualizacion_estado,
        ubicacion = s.ubicacion, ubicacion_actualizada_en = s.ubicacion_actualizada_en,
        ubicacion_precision_m = s.ubicacion_precision_m, metadata = '{"seed": true}', deleted_at = NULL
    FROM seed_efectivos s JOIN usuarios u ON u.dni = s.owner_dni
    WHERE e.codigo_interno = s.codigo_interno AND e.metadata @> '{"seed": true}'"#;

const INSERT_EFECTIVOS: &str = r#"INSERT INTO efectivos (uuid, usuario_id, codigo_interno, rango, unidad, especialidad, disponibilidad,
        ultima_actualizacion_estado, ubicacion, ubicacion_actualizada_en, ubicacion_precision_m, metadata)
    SELECT s.uuid, u.id, s.codigo_interno, s.rango, s.unidad, s.especialidad, s.disponibilidad,
        s.ultima_actualizacion_estado, s.ubicacion, s.ubicacion_actualizada_en, s.ubicacion_precision_m,
        '{"seed": true}'
    FROM seed_efectivos s JOIN usuarios u ON u.dni = s.owner_dni
    WHERE NOT EXISTS (SELECT 1 FROM efectivos e
                      WHERE e.codigo_interno = s.codigo_interno AND e.metadata @> '{"seed": true}')
    ORDER BY s.ord"#;

const INSERT_TAREAS: &str = r#"
INSERT INTO tareas (uuid, codigo, titulo, descripcion, tipo, prioridad, estado, origen, inicio_programado,
    fin_programado, inicio_real, fin_real, pausado_en, tiempo_pausado, delegado_usuario_id, creado_por_usuario_id,
    ubicacion, ubicacion_descripcion, extra_data, created_at, updated_at)
SELECT s.uuid, s.codigo, s.titulo, s.descripcion, s.tipo, s.prioridad, s.estado, 'seed', s.inicio_programado,
    s.fin_programado, s.inicio_real, s.fin_real, s.pausado_en, s.tiempo_pausado, d.id, c.id,
    s.ubicacion, s.ubicacion_descripcion, '{"seed": true}', s.created_at, s.updated_at
FROM seed_tareas s JOIN usuarios d ON d.dni = s.delegado_dni JOIN usuarios c ON c.dni = s.creador_dni
ORDER BY s.ord"#;

const INSERT_ASIGNACIONES: &str = r#"
INSERT INTO tarea_efectivos (tarea_id, efectivo_id, asignado_por_usuario_id, asignado_en, respuesta, respondida_en,
    created_at, updated_at)
SELECT t.id, e.id, u.id, s.asignado_en, s.respuesta, s.respondida_en, s.asignado_en,
    coalesce(s.respondida_en, s.asignado_en)
FROM seed_asignaciones s
JOIN tareas t ON t.codigo = s.codigo
JOIN efectivos e ON e.codigo_interno = s.codigo_interno
LEFT JOIN usuarios u ON u.dni = s.asignado_por_dni"#;

const INSERT_HISTORIAL: &str = r#"
INSERT INTO historial_estados (tarea_id, estado_anterior, estado_nuevo, usuario_id, motivo, extra_data, created_at)
SELECT t.id, s.estado_anterior, s.estado_nuevo, u.id, s.motivo, '{"seed": true}', s.created_at
FROM seed_historial s JOIN tareas t ON t.codigo = s.codigo LEFT JOIN usuarios u ON u.dni = s.usuario_dni
ORDER BY s.ord"#;

pub(crate) async fn replace(pool: &PgPool, staff: &Staff, plan: &Plan, hash: &str) -> Result<Counts, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let conn: &mut PgConnection = &mut tx;

    sqlx::raw_sql(STAGING).execute(&mut *conn).await?;
    sqlx::raw_sql(DELETE_SEED_TAREAS).execute(&mut *conn).await?;

    copy_in(conn, "seed_usuarios", &super::rows::usuarios(staff)).await?;
    copy_in(conn, "seed_efectivos", &super::rows::efectivos(staff)).await?;
    // Temporary tables are never auto-analyzed; the merges join on them.
    sqlx::raw_sql("ANALYZE seed_usuarios; ANALYZE seed_efectivos")
        .execute(&mut *conn)
        .await?;
    sqlx::raw_sql(FIND_SURPLUS).execute(&mut *conn).await?;
    // The usual re-run (same profile) has no surplus; skip the checks then.
    if sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM seed_surplus)")
        .fetch_one(&mut *conn)
        .await?
    {
        sqlx::raw_sql(RETIRE_SURPLUS).execute(&mut *conn).await?;
    }

    let mut usuarios = 0;
    for sql in MERGE_USUARIOS {
        usuarios += sqlx::query(sql).bind(hash).execute(&mut *conn).await?.rows_affected();
    }
    let updated_efectivos = rows(conn, UPDATE_EFECTIVOS).await?;

    copy_in(conn, "seed_tareas", &super::rows::tareas(staff, plan)).await?;
    copy_in(conn, "seed_asignaciones", &super::rows::asignaciones(staff, plan)).await?;
    copy_in(conn, "seed_historial", &super::rows::historial(staff, plan)).await?;
    sqlx::raw_sql("ANALYZE seed_tareas; ANALYZE seed_asignaciones; ANALYZE seed_historial")
        .execute(&mut *conn)
        .await?;

    let unchecked = skip_fk_triggers(conn).await?;
    let efectivos = updated_efectivos + rows(conn, INSERT_EFECTIVOS).await?;
    let tareas = rows(conn, INSERT_TAREAS).await?;
    let asignaciones = rows(conn, INSERT_ASIGNACIONES).await?;
    let historial = rows(conn, INSERT_HISTORIAL).await?;
    if unchecked {
        sqlx::raw_sql("SET LOCAL session_replication_role = origin")
            .execute(&mut *conn)
            .await?;
    }

    tx.commit().await?;
    Ok(Counts {
        usuarios,
        efectivos,
        tareas,
        asignaciones,
        historial,
    })
}

async fn rows(conn: &mut PgConnection, sql: &'static str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(sql).execute(conn).await?.rows_affected())
}

/// Foreign-key checks are row-by-row triggers and take most of the time of the
/// bulk INSERTs (about 60% for historial). The INSERTs above take every
/// reference from an inner join with the parent table (or NULL from a left
/// join), inside this transaction, so the checks cannot fail and may be
/// skipped, as `pg_restore --disable-triggers` does. That switch also silences
/// ordinary triggers, so it is used only while the target tables have no
/// INSERT trigger of their own, and only a superuser may flip it: other roles
/// keep the checks and are merely slower.
const MAY_SKIP_FK_TRIGGERS: &str = r#"
SELECT r.rolsuper AND NOT EXISTS (
    SELECT 1 FROM pg_trigger g
    WHERE g.tgrelid IN ('efectivos'::regclass, 'tareas'::regclass,
                        'tarea_efectivos'::regclass, 'historial_estados'::regclass)
      AND NOT g.tgisinternal
      AND g.tgtype & 4 <> 0 -- TRIGGER_TYPE_INSERT
)
FROM pg_roles r WHERE r.rolname = current_user"#;

async fn skip_fk_triggers(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let skip: bool = sqlx::query_scalar(MAY_SKIP_FK_TRIGGERS)
        .fetch_optional(&mut *conn)
        .await?
        .unwrap_or(false);
    if skip {
        sqlx::raw_sql("SET LOCAL session_replication_role = replica")
            .execute(&mut *conn)
            .await?;
    }
    Ok(skip)
}
