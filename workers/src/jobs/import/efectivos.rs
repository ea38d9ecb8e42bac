//! `import.efectivos`: a unit upserted by its `codigo_interno`. A new one is
//! created for the usuario the row names (by email or dni); an existing one
//! gets the row's rango, unidad and especialidad (an absent value clears it).
//! Its position is set only on creation: later positions are location updates,
//! which are ordered by their `recorded_at`.

use gad_shared::domain::efectivo;
use gad_shared::envelope::JobEnvelope;
use gad_shared::error_body::FieldError;
use gad_shared::job::JobResult;
use serde::Deserialize;
use serde_json::json;

use super::{check_dni, check_email, usuario_by};
use crate::effects::audit::{self, Entry, Severity};
use crate::effects::job_guard;
use crate::jobs::efectivos::create::{self, UnitFields};
use crate::jobs::efectivos::{access, field_rejection, parse, update};
use crate::jobs::{HandlerContext, HandlerError};

#[derive(Debug, Clone, Deserialize)]
pub struct Params {
    #[serde(default)]
    pub usuario_email: Option<String>,
    #[serde(default)]
    pub usuario_dni: Option<String>,
    #[serde(flatten)]
    pub unit: UnitFields,
}

impl Params {
    /// The payload checked with `efectivo.create`'s field rules, plus a usuario
    /// named by `usuario_email` or `usuario_dni` (both: they must agree).
    pub fn parse(payload: &serde_json::Value) -> Result<Self, HandlerError> {
        let mut p: Params = parse(payload)?;
        let mut errors = Vec::new();
        p.unit.check(&mut errors);
        check_email(&mut errors, "usuario_email", &mut p.usuario_email);
        check_dni(&mut errors, "usuario_dni", &mut p.usuario_dni);
        let named = p.usuario_email.is_some() || p.usuario_dni.is_some();
        if !named && errors.iter().all(|e| !e.field.starts_with("usuario_")) {
            errors.push(FieldError::new(
                "usuario_email",
                "required",
                "usuario_email or usuario_dni is required",
            ));
        }
        if errors.is_empty() {
            Ok(p)
        } else {
            Err(HandlerError::Invalid(errors))
        }
    }

    /// What the upsert is keyed by.
    pub fn natural_key(&self) -> &str {
        &self.unit.codigo_interno
    }

    /// The field that named the usuario, for errors about it.
    fn usuario_field(&self) -> &'static str {
        if self.usuario_email.is_some() {
            "usuario_email"
        } else {
            "usuario_dni"
        }
    }
}

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let p = Params::parse(&job.payload)?;
    let mut tx = ctx.db.begin().await?;
    if let Some(prior) = job_guard::lock(&mut tx, job.job_id).await? {
        return Ok(prior);
    }
    let field = p.usuario_field();
    let usuario_id = usuario_by(&mut tx, p.usuario_email.as_deref(), p.usuario_dni.as_deref())
        .await?
        .ok_or_else(|| field_rejection(field, "not_found", &format!("no usuario matches {field}")))?;
    let (id, before, http_status) = match access::lock_by_codigo(&mut tx, &p.unit.codigo_interno).await? {
        None => (create::insert(&mut tx, usuario_id, &p.unit).await?, None, 201),
        Some(unit) if unit.usuario_id != usuario_id => {
            return Err(HandlerError::conflict(
                "usuario_mismatch",
                format!("efectivo {} belongs to another usuario", p.unit.codigo_interno),
                json!({ "field": field }),
            ));
        }
        Some(unit) => (unit.id, efectivo::by_id(&mut *tx, unit.id).await?, 200),
    };
    let unchanged = before.as_ref().is_some_and(|b| {
        (&b.rango, &b.unidad, &b.especialidad) == (&p.unit.rango, &p.unit.unidad, &p.unit.especialidad)
    });
    if before.is_some() && !unchanged {
        let changes = update::Params {
            id,
            codigo_interno: None,
            rango: Some(p.unit.rango.clone()),
            unidad: Some(p.unit.unidad.clone()),
            especialidad: Some(p.unit.especialidad.clone()),
        };
        update::apply(&mut tx, &changes).await?;
    }
    let after = efectivo::by_id(&mut *tx, id)
        .await?
        .ok_or_else(|| HandlerError::not_found("efectivo"))?;
    let body = json!(after);
    // A row that changes nothing (imported again) writes no audit row either.
    if !unchanged {
        let action = if before.is_some() {
            "efectivo_updated"
        } else {
            "efectivo_created"
        };
        audit::record(
            &mut tx,
            Entry {
                severity: Severity::Medium,
                actor_usuario_id: job.submitted_by,
                before: before.map(|b| json!(b)),
                after: Some(body.clone()),
                job_id: Some(job.job_id),
                request_id: job.request_id.as_deref(),
                client: job.client.as_ref(),
                ..Entry::new(action, "efectivo", id)
            },
        )
        .await?;
    }
    let result = JobResult { http_status, body };
    job_guard::complete(&mut tx, job.job_id, &result).await?;
    tx.commit().await?;
    Ok(result)
}
