//! `efectivo.update` (nivel 3): partial edit of codigo_interno, rango, unidad
//! and especialidad. A key present in `changes` is applied; null clears.

use gad_shared::domain::efectivo;
use gad_shared::envelope::JobEnvelope;
use gad_shared::error_body::FieldError;
use gad_shared::job::JobResult;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{access, check_len, is_valid_codigo_interno, parse};
use crate::effects::audit::{self, Entry, Severity};
use crate::effects::{Tx, job_guard};
use crate::jobs::{HandlerContext, HandlerError};

#[derive(Debug, Deserialize)]
struct Raw {
    id: i64,
    changes: Map<String, Value>,
}

/// `Some(v)` = set to v (None clears); `None` = leave as is.
#[derive(Debug, Default, PartialEq)]
pub struct Params {
    pub id: i64,
    pub codigo_interno: Option<String>,
    pub rango: Option<Option<String>>,
    pub unidad: Option<Option<String>>,
    pub especialidad: Option<Option<String>>,
}

fn text(errors: &mut Vec<FieldError>, field: &str, v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        _ => {
            errors.push(FieldError::new(
                field,
                "invalid_type",
                format!("{field} must be a string"),
            ));
            None
        }
    }
}

impl Params {
    pub fn parse(payload: &Value) -> Result<Self, HandlerError> {
        let raw: Raw = parse(payload)?;
        let mut errors = Vec::new();
        let mut p = Params {
            id: raw.id,
            ..Params::default()
        };
        for (key, value) in &raw.changes {
            let v = text(&mut errors, key, value);
            match key.as_str() {
                "codigo_interno" => {
                    let c = v.map(|c| c.to_uppercase()).unwrap_or_default();
                    if !is_valid_codigo_interno(&c) {
                        errors.push(FieldError::new(
                            key,
                            "invalid_format",
                            "codigo_interno must match ^[A-Z0-9_-]{2,50}$",
                        ));
                    }
                    p.codigo_interno = Some(c);
                }
                "rango" => {
                    check_len(&mut errors, key, v.as_deref(), 50);
                    p.rango = Some(v);
                }
                "unidad" => {
                    check_len(&mut errors, key, v.as_deref(), 100);
                    p.unidad = Some(v);
                }
                "especialidad" => {
                    check_len(&mut errors, key, v.as_deref(), 100);
                    p.especialidad = Some(v);
                }
                other => errors.push(FieldError::new(
                    other,
                    "read_only",
                    format!("{other} cannot be changed here"),
                )),
            }
        }
        if errors.is_empty() {
            Ok(p)
        } else {
            Err(HandlerError::Invalid(errors))
        }
    }
}

/// Writes the present fields of `p` to the unit (shared with `import.efectivos`).
pub(crate) async fn apply(tx: &mut Tx<'_>, p: &Params) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE efectivos SET
             codigo_interno = CASE WHEN $2 THEN $3 ELSE codigo_interno END,
             rango = CASE WHEN $4 THEN $5 ELSE rango END,
             unidad = CASE WHEN $6 THEN $7 ELSE unidad END,
             especialidad = CASE WHEN $8 THEN $9 ELSE especialidad END
         WHERE id = $1",
    )
    .bind(p.id)
    .bind(p.codigo_interno.is_some())
    .bind(p.codigo_interno.as_deref())
    .bind(p.rango.is_some())
    .bind(p.rango.clone().flatten())
    .bind(p.unidad.is_some())
    .bind(p.unidad.clone().flatten())
    .bind(p.especialidad.is_some())
    .bind(p.especialidad.clone().flatten())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let p = Params::parse(&job.payload)?;
    let mut tx = ctx.db.begin().await?;
    if let Some(prior) = job_guard::lock(&mut tx, job.job_id).await? {
        return Ok(prior);
    }
    let actor = access::actor(&mut tx, job).await?;
    access::require_admin(&actor)?;
    access::lock(&mut tx, p.id)
        .await?
        .ok_or_else(|| HandlerError::not_found("efectivo"))?;
    let before = efectivo::by_id(&mut *tx, p.id)
        .await?
        .ok_or_else(|| HandlerError::not_found("efectivo"))?;
    apply(&mut tx, &p).await?;
    let after = efectivo::by_id(&mut *tx, p.id)
        .await?
        .ok_or_else(|| HandlerError::not_found("efectivo"))?;
    let body = json!(after);
    audit::record(
        &mut tx,
        Entry {
            severity: Severity::Medium,
            actor_usuario_id: Some(actor.usuario_id),
            before: Some(json!(before)),
            after: Some(body.clone()),
            job_id: Some(job.job_id),
            request_id: job.request_id.as_deref(),
            client: job.client.as_ref(),
            ..Entry::new("efectivo_updated", "efectivo", p.id)
        },
    )
    .await?;
    let result = JobResult { http_status: 200, body };
    job_guard::complete(&mut tx, job.job_id, &result).await?;
    tx.commit().await?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_keys_change_null_clears_and_others_are_refused() {
        let p = Params::parse(&json!({ "id": 3, "changes": { "codigo_interno": " ab-1 ", "rango": null } }));
        assert!(
            p.is_ok_and(|p| p.codigo_interno.as_deref() == Some("AB-1") && p.rango == Some(None) && p.unidad.is_none())
        );
        let Err(HandlerError::Invalid(fields)) = Params::parse(
            &json!({ "id": 3, "changes": { "codigo_interno": null, "disponibilidad": "x", "unidad": 5 } }),
        ) else {
            panic!("expected invalid")
        };
        let names: Vec<_> = fields.iter().map(|f| (f.field.as_str(), f.code.as_str())).collect();
        assert_eq!(
            names,
            [
                ("codigo_interno", "invalid_format"),
                ("disponibilidad", "read_only"),
                ("unidad", "invalid_type")
            ]
        );
    }
}
