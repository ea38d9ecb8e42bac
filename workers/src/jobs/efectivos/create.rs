//! `efectivo.create` (nivel 3): a unit for a usuario that has none.

use gad_shared::domain::efectivo;
use gad_shared::envelope::JobEnvelope;
use gad_shared::error_body::FieldError;
use gad_shared::job::JobResult;
use serde::Deserialize;
use serde_json::json;

use super::{access, check_lat_lng, check_len, field_rejection, is_valid_codigo_interno, parse};
use crate::effects::audit::{self, Entry, Severity};
use crate::effects::{Tx, job_guard};
use crate::jobs::{HandlerContext, HandlerError};

/// A unit's own fields, as `efectivo.create` and `import.efectivos` take them.
#[derive(Debug, Clone, Deserialize)]
pub struct UnitFields {
    pub codigo_interno: String,
    #[serde(default)]
    pub rango: Option<String>,
    #[serde(default)]
    pub unidad: Option<String>,
    #[serde(default)]
    pub especialidad: Option<String>,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lng: Option<f64>,
}

impl UnitFields {
    /// Upper-cases codigo_interno and adds every §7 rule the fields break to `errors`.
    pub fn check(&mut self, errors: &mut Vec<FieldError>) {
        self.codigo_interno = self.codigo_interno.trim().to_uppercase();
        if !is_valid_codigo_interno(&self.codigo_interno) {
            errors.push(FieldError::new(
                "codigo_interno",
                "invalid_format",
                "codigo_interno must match ^[A-Z0-9_-]{2,50}$",
            ));
        }
        check_len(errors, "rango", self.rango.as_deref(), 50);
        check_len(errors, "unidad", self.unidad.as_deref(), 100);
        check_len(errors, "especialidad", self.especialidad.as_deref(), 100);
        match (self.lat, self.lng) {
            (Some(lat), Some(lng)) => check_lat_lng(errors, lat, lng),
            (None, None) => {}
            (None, Some(_)) => errors.push(FieldError::new("lat", "required", "lat and lng go together")),
            (Some(_), None) => errors.push(FieldError::new("lng", "required", "lat and lng go together")),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Params {
    pub usuario_id: i64,
    #[serde(flatten)]
    pub unit: UnitFields,
}

impl Params {
    pub fn parse(payload: &serde_json::Value) -> Result<Self, HandlerError> {
        let mut p: Params = parse(payload)?;
        let mut errors = Vec::new();
        if p.usuario_id <= 0 {
            errors.push(FieldError::new(
                "usuario_id",
                "out_of_range",
                "usuario_id must be positive",
            ));
        }
        p.unit.check(&mut errors);
        if errors.is_empty() {
            Ok(p)
        } else {
            Err(HandlerError::Invalid(errors))
        }
    }
}

/// Inserts the unit; the unique indexes answer "the usuario already has one"
/// and "codigo_interno exists" (409 `duplicate`). Its position, when given,
/// is stamped now.
pub(crate) async fn insert(tx: &mut Tx<'_>, usuario_id: i64, unit: &UnitFields) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO efectivos (usuario_id, codigo_interno, rango, unidad, especialidad, ubicacion, ubicacion_actualizada_en)
         VALUES ($1, $2, $3, $4, $5,
                 CASE WHEN $6::float8 IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint($7, $6), 4326)::geography END,
                 CASE WHEN $6::float8 IS NULL THEN NULL ELSE now() END)
         RETURNING id",
    )
    .bind(usuario_id)
    .bind(&unit.codigo_interno)
    .bind(unit.rango.as_deref())
    .bind(unit.unidad.as_deref())
    .bind(unit.especialidad.as_deref())
    .bind(unit.lat)
    .bind(unit.lng)
    .fetch_one(&mut **tx)
    .await
}

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let p = Params::parse(&job.payload)?;
    let mut tx = ctx.db.begin().await?;
    if let Some(prior) = job_guard::lock(&mut tx, job.job_id).await? {
        return Ok(prior);
    }
    let actor = access::actor(&mut tx, job).await?;
    access::require_admin(&actor)?;
    let usuario_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM usuarios WHERE id = $1 AND deleted_at IS NULL)")
            .bind(p.usuario_id)
            .fetch_one(&mut *tx)
            .await?;
    if !usuario_exists {
        return Err(field_rejection("usuario_id", "not_found", "usuario_id does not exist"));
    }
    let id = insert(&mut tx, p.usuario_id, &p.unit).await?;
    let row = efectivo::by_id(&mut *tx, id)
        .await?
        .ok_or_else(|| HandlerError::not_found("efectivo"))?;
    let body = json!(row);
    audit::record(
        &mut tx,
        Entry {
            severity: Severity::Medium,
            actor_usuario_id: Some(actor.usuario_id),
            after: Some(body.clone()),
            job_id: Some(job.job_id),
            request_id: job.request_id.as_deref(),
            client: job.client.as_ref(),
            ..Entry::new("efectivo_created", "efectivo", id)
        },
    )
    .await?;
    let result = JobResult { http_status: 201, body };
    job_guard::complete(&mut tx, job.job_id, &result).await?;
    tx.commit().await?;
    Ok(result)
}
