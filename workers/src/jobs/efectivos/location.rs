//! `efectivo.location` (§5): the unit's position. Updates arrive out of order,
//! so one older than the stored position is ignored. `efectivo_location_update`
//! goes out at most once per efectivo per [`EVENT_EVERY`]; an update inside
//! that window is flagged and the timers loop sends the latest position when
//! the window ends, so the last position is never lost. Not audited (§2.1).

use chrono::{DateTime, Utc};
use gad_shared::envelope::JobEnvelope;
use gad_shared::error_body::FieldError;
use gad_shared::job::JobResult;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::access::{self, Locked};
use super::{check_lat_lng, parse};
use crate::effects::{Tx, job_guard, outbox};
use crate::jobs::{HandlerContext, HandlerError};

/// At most one location event per efectivo this often.
pub const EVENT_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// How far ahead of our clock a device's `recorded_at` may be.
const MAX_CLOCK_SKEW_S: i64 = 60;

#[derive(Debug, Deserialize)]
pub struct Params {
    pub id: i64,
    pub lat: f64,
    pub lng: f64,
    #[serde(default)]
    pub accuracy_m: Option<f64>,
    #[serde(default)]
    pub recorded_at: Option<DateTime<Utc>>,
}

impl Params {
    pub fn parse(payload: &serde_json::Value) -> Result<Self, HandlerError> {
        let p: Params = parse(payload)?;
        let errors = check_fix(p.lat, p.lng, p.accuracy_m, p.recorded_at);
        if errors.is_empty() {
            Ok(p)
        } else {
            Err(HandlerError::Invalid(errors))
        }
    }
}

/// The §5 rules of a position report, shared with `import.locations`:
/// coordinates in range, an accuracy of 0–10000 m, and a device time not
/// ahead of our clock by more than a minute.
pub fn check_fix(lat: f64, lng: f64, accuracy_m: Option<f64>, recorded_at: Option<DateTime<Utc>>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check_lat_lng(&mut errors, lat, lng);
    if accuracy_m.is_some_and(|a| !(a.is_finite() && (0.0..=10_000.0).contains(&a))) {
        errors.push(FieldError::new(
            "accuracy_m",
            "out_of_range",
            "accuracy_m must be between 0 and 10000",
        ));
    }
    if recorded_at.is_some_and(|t| t > Utc::now() + chrono::Duration::seconds(MAX_CLOCK_SKEW_S)) {
        errors.push(FieldError::new(
            "recorded_at",
            "out_of_range",
            "recorded_at is in the future",
        ));
    }
    errors
}

/// One position of one unit, ordered by `recorded_at`.
#[derive(Debug, Clone, Copy)]
pub struct Fix {
    pub lat: f64,
    pub lng: f64,
    pub accuracy_m: Option<f64>,
    pub recorded_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Stored {
    lat: Option<f64>,
    lng: Option<f64>,
    ubicacion_actualizada_en: Option<DateTime<Utc>>,
}

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let p = Params::parse(&job.payload)?;
    // Without a device time, the moment ingress accepted the update orders it.
    let recorded_at = p.recorded_at.unwrap_or(job.submitted_at);
    let mut tx = ctx.db.begin().await?;
    if let Some(prior) = job_guard::lock(&mut tx, job.job_id).await? {
        return Ok(prior);
    }
    let actor = access::actor(&mut tx, job).await?;
    let unit = access::lock_for(&mut tx, &actor, p.id).await?;
    let fix = Fix {
        lat: p.lat,
        lng: p.lng,
        accuracy_m: p.accuracy_m,
        recorded_at,
    };
    let result = apply(&mut tx, &unit, fix, job.job_id).await?;
    job_guard::complete(&mut tx, job.job_id, &result).await?;
    tx.commit().await?;
    Ok(result)
}

/// Moves the locked `unit` to `fix` unless its stored position is newer
/// (shared with `import.locations`); answers with the position that stays.
pub(crate) async fn apply(tx: &mut Tx<'_>, unit: &Locked, fix: Fix, job_id: Uuid) -> Result<JobResult, sqlx::Error> {
    let stale = unit
        .ubicacion_actualizada_en
        .is_some_and(|stored| stored > fix.recorded_at);
    if !stale {
        let emit = unit.location_event_at.is_none_or(|at| {
            Utc::now()
                .signed_duration_since(at)
                .to_std()
                .is_ok_and(|since| since >= EVENT_EVERY)
        });
        sqlx::query(
            "UPDATE efectivos SET ubicacion = ST_SetSRID(ST_MakePoint($3, $2), 4326)::geography,
                    ubicacion_actualizada_en = $4, ubicacion_precision_m = $5,
                    metadata = CASE WHEN $6 THEN (metadata - 'location_pending') || jsonb_build_object('location_event_at', now())
                                    ELSE metadata || '{\"location_pending\": true}'::jsonb END
             WHERE id = $1",
        )
        .bind(unit.id)
        .bind(fix.lat)
        .bind(fix.lng)
        .bind(fix.recorded_at)
        .bind(fix.accuracy_m.map(|a| a as f32))
        .bind(emit)
        .execute(&mut **tx)
        .await?;
        if emit {
            location_event(
                tx,
                unit.id,
                fix.lat,
                fix.lng,
                fix.accuracy_m,
                fix.recorded_at,
                Some(job_id),
            )
            .await?;
        }
    }
    let stored: Stored = sqlx::query_as(
        "SELECT ST_Y(ubicacion::geometry) AS lat, ST_X(ubicacion::geometry) AS lng, ubicacion_actualizada_en
         FROM efectivos WHERE id = $1",
    )
    .bind(unit.id)
    .fetch_one(&mut **tx)
    .await?;
    // An ignored (older) update answers with the position that stays.
    Ok(JobResult {
        http_status: 200,
        body: json!({
            "efectivo_id": unit.id,
            "lat": stored.lat,
            "lng": stored.lng,
            "ubicacion_actualizada_en": stored.ubicacion_actualizada_en.map(|t| gad_shared::time::format(&t)),
        }),
    })
}

/// `efectivo_location_update {efectivo_id, lat, lng, accuracy_m?, recorded_at}`.
pub async fn location_event(
    tx: &mut Tx<'_>,
    efectivo_id: i64,
    lat: f64,
    lng: f64,
    accuracy_m: Option<f64>,
    recorded_at: DateTime<Utc>,
    job_id: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    let mut data = json!({
        "efectivo_id": efectivo_id,
        "lat": lat,
        "lng": lng,
        "recorded_at": gad_shared::time::format(&recorded_at),
    });
    if let Some(a) = accuracy_m {
        data["accuracy_m"] = json!(a);
    }
    outbox::event(
        tx,
        "efectivo_location_update",
        &super::events::topics(efectivo_id),
        data,
        job_id,
    )
    .await?;
    Ok(())
}
