//! `emergency.dispatch` (§4): in one transaction, reserve the nearest free
//! unit and create the emergencia tarea assigned to it, with its historial,
//! audit and outbox rows. No unit: the job fails `no_efectivo_available` and
//! supervisors are alerted. Transient failures retry for at most
//! [`RETRY_BUDGET`] after submission; then the job fails and supervisors are
//! alerted too.

use std::time::Duration;

use chrono::{DateTime, Utc};
use gad_shared::envelope::JobEnvelope;
use gad_shared::error_body::FieldError;
use gad_shared::job::JobResult;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::alert::{self, Alert, Level};
use super::notify::{self, Assigned};
use super::task_events::{self, Assignment};
use super::{config, pick};
use crate::effects::audit::{self, Entry, Severity};
use crate::effects::historial::{self, Change};
use crate::effects::{actor, job_guard};
use crate::jobs::efectivos::events::{self as efectivo_events, StatusChange};
use crate::jobs::error::is_transient;
use crate::jobs::{HandlerContext, HandlerError};

/// An emergency never retries for longer than this after it was submitted.
pub const RETRY_BUDGET: Duration = Duration::from_secs(30);
pub const MOTIVO: &str = "despacho de emergencia";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reporter {
    #[serde(default)]
    pub nombre: Option<String>,
    #[serde(default)]
    pub telefono: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Params {
    pub lat: f64,
    pub lng: f64,
    #[serde(default)]
    pub telegram_id: Option<i64>,
    #[serde(default)]
    pub reporter: Option<Reporter>,
    #[serde(default)]
    pub descripcion: Option<String>,
}

impl Params {
    /// Ingress validated already; a job published straight to the queue was not.
    pub fn parse(payload: &serde_json::Value) -> Result<Self, HandlerError> {
        let p: Params = serde_json::from_value(payload.clone())
            .map_err(|e| HandlerError::Invalid(vec![FieldError::new("payload", "invalid", e.to_string())]))?;
        let mut errors = Vec::new();
        if !(p.lat.is_finite() && (-90.0..=90.0).contains(&p.lat)) {
            errors.push(FieldError::new("lat", "out_of_range", "lat must be between -90 and 90"));
        }
        if !(p.lng.is_finite() && (-180.0..=180.0).contains(&p.lng)) {
            errors.push(FieldError::new(
                "lng",
                "out_of_range",
                "lng must be between -180 and 180",
            ));
        }
        if p.telegram_id.is_some_and(|t| t <= 0) {
            errors.push(FieldError::new(
                "telegram_id",
                "out_of_range",
                "telegram_id must be positive",
            ));
        }
        if let Some(r) = &p.reporter {
            if r.nombre.as_ref().is_some_and(|n| n.chars().count() > 100) {
                errors.push(FieldError::new(
                    "reporter.nombre",
                    "invalid_length",
                    "nombre must have at most 100 characters",
                ));
            }
            if r.telefono.as_ref().is_some_and(|t| t.chars().count() > 20) {
                errors.push(FieldError::new(
                    "reporter.telefono",
                    "invalid_length",
                    "telefono must have at most 20 characters",
                ));
            }
        }
        if p.descripcion.as_ref().is_some_and(|d| d.chars().count() > 1000) {
            errors.push(FieldError::new(
                "descripcion",
                "invalid_length",
                "descripcion must have at most 1000 characters",
            ));
        }
        if p.telegram_id.is_none() && p.reporter.is_none() {
            errors.push(FieldError::new(
                "reporter",
                "required",
                "telegram_id or reporter is required",
            ));
        }
        if errors.is_empty() {
            Ok(p)
        } else {
            Err(HandlerError::Invalid(errors))
        }
    }

    /// "Emergencia: " and the first 180 characters of descripcion, or the coordinates.
    pub fn titulo(&self) -> String {
        match self.descripcion.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            Some(d) => format!("Emergencia: {}", d.chars().take(180).collect::<String>()),
            None => format!("Emergencia: ({:.5}, {:.5})", self.lat, self.lng),
        }
    }

    fn reporte(&self) -> serde_json::Value {
        let r = self.reporter.clone().unwrap_or_default();
        json!({ "nombre": r.nombre, "telefono": r.telefono, "telegram_id": self.telegram_id })
    }
}

enum Failure {
    NoUnit,
    Handler(HandlerError),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Handler(e.into())
    }
}

impl From<HandlerError> for Failure {
    fn from(e: HandlerError) -> Self {
        Failure::Handler(e)
    }
}

fn budget_left(job: &JobEnvelope) -> Option<Duration> {
    let spent = (Utc::now() - job.submitted_at).to_std().unwrap_or_default();
    RETRY_BUDGET.checked_sub(spent).filter(|d| !d.is_zero())
}

fn is_retryable(e: &HandlerError) -> bool {
    match e {
        HandlerError::Database(db) => is_transient(db),
        HandlerError::Deadline => true,
        _ => false,
    }
}

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let params = Params::parse(&job.payload)?;
    let Some(left) = budget_left(job) else {
        return give_up(ctx, job, &params).await;
    };
    let outcome = match tokio::time::timeout(left, dispatch(ctx, job, &params)).await {
        Ok(outcome) => outcome,
        Err(_) => return give_up(ctx, job, &params).await,
    };
    let elapsed = (Utc::now() - job.submitted_at)
        .to_std()
        .unwrap_or_default()
        .as_secs_f64();
    match outcome {
        Ok(result) => {
            metrics::counter!(gad_shared::metric_names::EMERGENCY_DISPATCH, "outcome" => "assigned").increment(1);
            metrics::histogram!(gad_shared::metric_names::EMERGENCY_DISPATCH_SECONDS, "outcome" => "assigned")
                .record(elapsed);
            Ok(result)
        }
        Err(Failure::NoUnit) => {
            record_unassigned(ctx, job, &params, "no_efectivo_available").await?;
            metrics::counter!(gad_shared::metric_names::EMERGENCY_DISPATCH, "outcome" => "no_efectivo_available")
                .increment(1);
            metrics::histogram!(gad_shared::metric_names::EMERGENCY_DISPATCH_SECONDS, "outcome" => "no_efectivo_available").record(elapsed);
            Err(HandlerError::rejected(
                404,
                "no_efectivo_available",
                "no available efectivo with a known location",
            ))
        }
        Err(Failure::Handler(e)) if is_retryable(&e) && budget_left(job).is_none() => {
            tracing::warn!(error = %e, "emergency dispatch out of retry budget");
            give_up(ctx, job, &params).await
        }
        Err(Failure::Handler(e)) => match budget_left(job).filter(|_| is_retryable(&e)) {
            Some(left) => {
                metrics::counter!(gad_shared::metric_names::EMERGENCY_DISPATCH, "outcome" => "error").increment(1);
                // The lane's backoff may exceed what is left; the last retry
                // must still come inside the budget, to dispatch or give up.
                Err(HandlerError::Within {
                    cause: Box::new(e),
                    left,
                })
            }
            None => Err(e),
        },
    }
}

/// Past the retry budget: fail for good, after alerting supervisors (if the
/// database lets us; the failure is logged either way). A delivery that finds
/// the job already committed by an earlier one answers with that result.
async fn give_up(ctx: &HandlerContext, job: &JobEnvelope, params: &Params) -> Result<JobResult, HandlerError> {
    let prior = async {
        let mut tx = ctx.db.begin().await?;
        let prior = job_guard::lock(&mut tx, job.job_id).await?;
        tx.rollback().await?;
        Ok::<_, sqlx::Error>(prior)
    };
    if let Ok(Some(prior)) = prior.await {
        return Ok(prior);
    }
    if let Err(e) = record_unassigned(ctx, job, params, "dependency_unavailable").await {
        tracing::error!(error = %e, job_id = %job.job_id, "emergency not dispatched within its budget; alert not written");
    }
    metrics::counter!(gad_shared::metric_names::EMERGENCY_DISPATCH, "outcome" => "error").increment(1);
    Err(HandlerError::Rejected(gad_shared::job::JobError {
        http_status: 503,
        error: "dependency_unavailable".into(),
        message: "the emergency could not be dispatched in time; supervisors were alerted".into(),
        details: Some(json!({ "dependency": "postgres" })),
    }))
}

/// The audit row and the `emergency_unassigned` alert of an emergency that got
/// no unit, in a transaction of their own (the dispatch one rolled back).
/// Written once per job even if the job runs again.
async fn record_unassigned(
    ctx: &HandlerContext,
    job: &JobEnvelope,
    params: &Params,
    error_code: &str,
) -> Result<(), HandlerError> {
    let mut tx = ctx.db.begin().await?;
    let done: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM audit_log WHERE job_id = $1 AND action = 'emergency_unassigned')",
    )
    .bind(job.job_id)
    .fetch_one(&mut *tx)
    .await?;
    if done {
        return Ok(());
    }
    let reason = if error_code == "no_efectivo_available" {
        "no hay efectivos disponibles con ubicación conocida"
    } else {
        "no se pudo despachar a tiempo"
    };
    alert::raise(
        &mut tx,
        Alert {
            kind: "emergency_unassigned",
            title: "Emergencia sin efectivo asignado".into(),
            content: format!("Emergencia en ({:.5}, {:.5}): {reason}.", params.lat, params.lng),
            level: Level::Critical,
            tarea_id: None,
            efectivo_id: None,
        },
        Some(job.job_id),
    )
    .await?;
    // The submitter may be gone; the audit row must not fail on its foreign key.
    let actor = match job.submitted_by {
        Some(u) => actor::load(&mut tx, u).await?.map(|a| a.usuario_id),
        None => None,
    };
    audit::record(
        &mut tx,
        Entry {
            severity: Severity::High,
            actor_usuario_id: actor,
            after: Some(json!({
                "lat": params.lat, "lng": params.lng, "descripcion": params.descripcion, "reporte": params.reporte(),
                "received_at": gad_shared::time::format(&job.submitted_at),
            })),
            job_id: Some(job.job_id),
            request_id: job.request_id.as_deref(),
            client: job.client.as_ref(),
            success: false,
            error_code: Some(error_code),
            ..Entry::new("emergency_unassigned", "job", job.job_id)
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

const INSERT_TAREA_SQL: &str = "\
INSERT INTO tareas (codigo, titulo, descripcion, tipo, prioridad, estado, origen, inicio_programado,
                    delegado_usuario_id, creado_por_usuario_id, ubicacion, creado_por_job_id, extra_data)
VALUES ('EMG-' || to_char(now() AT TIME ZONE 'UTC', 'YYMMDD') || '-' || lpad(nextval('emergency_codigo_seq')::text, 7, '0'),
        $1, $2, 'emergencia', 5, 'programada', 'emergencia', now(), $3, $4,
        ST_SetSRID(ST_MakePoint($6, $5), 4326)::geography, $7, $8)
RETURNING id, uuid, codigo";

async fn dispatch(ctx: &HandlerContext, job: &JobEnvelope, p: &Params) -> Result<JobResult, Failure> {
    let mut tx = ctx.db.begin().await?;
    if let Some(prior) = job_guard::lock(&mut tx, job.job_id).await? {
        return Ok(prior);
    }
    let submitter = job.submitted_by.ok_or_else(HandlerError::forbidden)?;
    let actor = actor::load(&mut tx, submitter)
        .await?
        .ok_or_else(HandlerError::forbidden)?;
    let Some(unit) = pick::nearest_free(&mut tx, p.lat, p.lng, &[], &config::get()).await? else {
        return Err(Failure::NoUnit);
    };
    let descripcion = p.descripcion.as_deref().map(str::trim).filter(|d| !d.is_empty());
    let (tarea_id, tarea_uuid, codigo): (i64, Uuid, String) = sqlx::query_as(INSERT_TAREA_SQL)
        .bind(p.titulo())
        .bind(descripcion)
        .bind(unit.usuario_id)
        .bind(actor.usuario_id)
        .bind(p.lat)
        .bind(p.lng)
        .bind(job.job_id)
        .bind(json!({ "reporte": p.reporte(), "declined": [] }))
        .fetch_one(&mut *tx)
        .await?;
    let assigned_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO tarea_efectivos (tarea_id, efectivo_id, asignado_por_usuario_id) VALUES ($1, $2, NULL)
         RETURNING asignado_en",
    )
    .bind(tarea_id)
    .bind(unit.efectivo_id)
    .fetch_one(&mut *tx)
    .await?;
    historial::record(
        &mut tx,
        Change {
            tarea_id,
            anterior: None,
            nuevo: "programada",
            usuario_id: Some(actor.usuario_id),
            motivo: Some(MOTIVO),
            job_id: Some(job.job_id),
        },
    )
    .await?;

    let snapshot = task_events::tarea_snapshot(&mut tx, tarea_id, None, job.job_id).await?;
    task_events::task_assigned(
        &mut tx,
        Assignment {
            tarea_id,
            codigo: &codigo,
            efectivo_id: unit.efectivo_id,
            usuario_id: unit.usuario_id,
            accion: "asignado",
        },
        job.job_id,
    )
    .await?;
    efectivo_events::status_changed(
        &mut tx,
        StatusChange {
            efectivo_id: unit.efectivo_id,
            anterior: "disponible",
            nuevo: "en_tarea",
            tarea_id: Some(tarea_id),
            motivo: Some(MOTIVO),
        },
        Some(job.job_id),
    )
    .await?;
    notify::emergency_assigned(
        &mut tx,
        Assigned {
            recipient_usuario_id: unit.usuario_id,
            tarea_id,
            codigo: &codigo,
            descripcion,
            lat: Some(p.lat),
            lng: Some(p.lng),
            distance_m: Some(unit.distance_m),
            reminder: false,
        },
        Uuid::now_v7(),
    )
    .await?;
    alert::raise(
        &mut tx,
        Alert {
            kind: "emergency_created",
            title: format!("Emergencia {codigo}"),
            content: format!(
                "{} asignada a {} a {} m.",
                p.titulo(),
                unit.codigo_interno,
                unit.distance_m.round() as i64
            ),
            level: Level::Critical,
            tarea_id: Some(tarea_id),
            efectivo_id: Some(unit.efectivo_id),
        },
        Some(job.job_id),
    )
    .await?;
    audit::record(
        &mut tx,
        Entry {
            severity: Severity::High,
            actor_usuario_id: Some(actor.usuario_id),
            after: Some(json!({ "tarea": snapshot, "efectivo_id": unit.efectivo_id, "distance_m": unit.distance_m })),
            job_id: Some(job.job_id),
            request_id: job.request_id.as_deref(),
            client: job.client.as_ref(),
            ..Entry::new("emergency_created", "tarea", tarea_id)
        },
    )
    .await?;

    let result = JobResult {
        http_status: 201,
        body: json!({
            "tarea_id": tarea_id,
            "tarea_uuid": tarea_uuid,
            "codigo": codigo,
            "assigned_efectivo_id": unit.efectivo_id,
            "efectivo_codigo": unit.codigo_interno,
            "distance_m": unit.distance_m,
            "status": "assigned",
            "received_at": gad_shared::time::format(&job.submitted_at),
            "assigned_at": gad_shared::time::format(&assigned_at),
        }),
    };
    job_guard::complete(&mut tx, job.job_id, &result).await?;
    tx.commit().await?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_rules_match_the_http_rules() {
        let ok = Params::parse(&json!({ "lat": -34.6, "lng": -58.4, "reporter": { "nombre": "Ana" } }));
        assert!(ok.is_ok());
        let Err(HandlerError::Invalid(fields)) =
            Params::parse(&json!({ "lat": 91.0, "lng": -58.4, "descripcion": "x".repeat(1001) }))
        else {
            panic!("expected invalid")
        };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["lat", "descripcion", "reporter"]);
    }

    #[test]
    fn titulo_is_descripcion_cut_at_180_or_the_coordinates() {
        let p = Params {
            lat: -34.6,
            lng: -58.4,
            telegram_id: Some(1),
            reporter: None,
            descripcion: Some("ñ".repeat(300)),
        };
        assert_eq!(p.titulo().chars().count(), "Emergencia: ".len() + 180);
        let p = Params { descripcion: None, ..p };
        assert_eq!(p.titulo(), "Emergencia: (-34.60000, -58.40000)");
    }
}
