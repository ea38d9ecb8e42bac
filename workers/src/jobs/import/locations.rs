//! `import.locations`: a position of the unit with the row's
//! `codigo_interno`, at the row's `recorded_at` (required here: with the
//! codigo it is what the row is known by). The same rules and the same write
//! as `efectivo.location`: an update older than the stored position is ignored.

use chrono::SecondsFormat;
use gad_shared::envelope::JobEnvelope;
use gad_shared::error_body::FieldError;
use gad_shared::job::JobResult;
use serde::Deserialize;

use crate::effects::job_guard;
use crate::jobs::efectivos::location::{self, Fix};
use crate::jobs::efectivos::{access, field_rejection, is_valid_codigo_interno, parse};
use crate::jobs::tasks::fields;
use crate::jobs::{HandlerContext, HandlerError};

#[derive(Deserialize)]
struct Raw {
    codigo_interno: String,
    lat: f64,
    lng: f64,
    #[serde(default)]
    accuracy_m: Option<f64>,
    recorded_at: String,
}

#[derive(Debug, Clone)]
pub struct Params {
    pub codigo_interno: String,
    pub fix: Fix,
}

impl Params {
    pub fn parse(payload: &serde_json::Value) -> Result<Self, HandlerError> {
        let raw: Raw = parse(payload)?;
        let codigo_interno = raw.codigo_interno.trim().to_uppercase();
        let mut errors = Vec::new();
        if !is_valid_codigo_interno(&codigo_interno) {
            errors.push(FieldError::new(
                "codigo_interno",
                "invalid_format",
                "codigo_interno must match ^[A-Z0-9_-]{2,50}$",
            ));
        }
        let recorded_at = fields::timestamp("recorded_at", raw.recorded_at.trim()).map_err(|e| errors.push(e));
        errors.extend(location::check_fix(raw.lat, raw.lng, raw.accuracy_m, recorded_at.ok()));
        match recorded_at {
            Ok(recorded_at) if errors.is_empty() => Ok(Params {
                codigo_interno,
                fix: Fix {
                    lat: raw.lat,
                    lng: raw.lng,
                    accuracy_m: raw.accuracy_m,
                    recorded_at,
                },
            }),
            _ => Err(HandlerError::Invalid(errors)),
        }
    }

    /// The unit and the moment: one position per unit per instant.
    pub fn natural_key(&self) -> String {
        let at = self.fix.recorded_at.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        format!("{}@{at}", self.codigo_interno)
    }
}

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let p = Params::parse(&job.payload)?;
    let mut tx = ctx.db.begin().await?;
    if let Some(prior) = job_guard::lock(&mut tx, job.job_id).await? {
        return Ok(prior);
    }
    let unit = access::lock_by_codigo(&mut tx, &p.codigo_interno)
        .await?
        .ok_or_else(|| field_rejection("codigo_interno", "not_found", "no efectivo has this codigo_interno"))?;
    let result = location::apply(&mut tx, &unit, p.fix, job.job_id).await?;
    job_guard::complete(&mut tx, job.job_id, &result).await?;
    tx.commit().await?;
    Ok(result)
}
