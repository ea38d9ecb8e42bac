//! Answers that handlers (or the workers behind a job) build as JSON values,
//! described for the document. Shapes with a Rust type of their own derive
//! their schema where they are defined.

// Described, never built: the answers are assembled with `json!`.
#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use utoipa::ToSchema;
use uuid::Uuid;

/// 202: the job is stored in JetStream; follow it by polling `status_url` or
/// by subscribing to `channel` over WebSocket.
#[derive(ToSchema)]
pub struct Accepted {
    pub job_id: Uuid,
    /// `/api/v1/jobs/{job_id}`
    pub status_url: String,
    /// `jobs.{job_id}`
    pub channel: String,
}

#[derive(ToSchema)]
pub struct LoggedOut {
    /// `logged_out`
    pub status: String,
}

#[derive(ToSchema)]
pub struct NotifPreferences {
    pub notif_supervision: bool,
}

#[derive(ToSchema)]
pub struct Live {
    /// `ok`
    pub status: String,
    pub environment: String,
    pub timestamp: DateTime<Utc>,
}

#[derive(ToSchema)]
pub struct Readiness {
    /// `ok` or `degraded` (200); `not_ready` or `draining` (503).
    #[schema(pattern = "^(ok|degraded|not_ready|draining)$")]
    pub status: String,
    /// Per dependency (`nats`, `postgres`, `redis`): `ok` or `error: <reason>`.
    pub checks: BTreeMap<String, String>,
}

#[derive(ToSchema)]
pub struct Invalidated {
    pub message: String,
    pub invalidated: bool,
}

#[derive(ToSchema)]
pub struct LinkCode {
    pub code: String,
    pub expires_at: DateTime<Utc>,
    /// `https://t.me/<bot>?start=<code>`
    pub deep_link: String,
}

/// `PUT /api/v1/efectivos/{id}/location`: the position now stored (an older
/// update leaves the newer one in place).
#[derive(ToSchema)]
pub struct StoredLocation {
    pub efectivo_id: i64,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub ubicacion_actualizada_en: Option<DateTime<Utc>>,
}

#[derive(ToSchema)]
pub struct Assignment {
    pub tarea_id: i64,
    pub efectivos_asignados: Vec<i64>,
}

#[derive(ToSchema)]
pub struct AssigneeAnswer {
    pub tarea_id: i64,
    pub efectivo_id: i64,
    /// `aceptada` or `rechazada`
    pub respuesta: String,
}

/// 201 of an emergency: the tarea created and the unit dispatched.
#[derive(ToSchema)]
pub struct Dispatch {
    pub tarea_id: i64,
    pub tarea_uuid: Uuid,
    pub codigo: String,
    pub assigned_efectivo_id: i64,
    pub efectivo_codigo: String,
    pub distance_m: f64,
    /// `assigned`
    pub status: String,
    pub received_at: DateTime<Utc>,
    pub assigned_at: DateTime<Utc>,
}

#[derive(ToSchema)]
pub struct Nearest {
    /// Nearest first.
    pub items: Vec<NearestItem>,
}

#[derive(ToSchema)]
pub struct NearestItem {
    pub efectivo_id: i64,
    pub codigo_interno: String,
    pub usuario_id: i64,
    pub distance_m: f64,
    pub lat: f64,
    pub lng: f64,
    pub disponibilidad: String,
    pub ubicacion_actualizada_en: Option<DateTime<Utc>>,
}

#[derive(ToSchema)]
pub struct MapView {
    pub center: Point,
    pub radius_m: i64,
    pub truncated: Truncated,
    /// Always empty; kept for the original board.
    pub usuarios: Vec<serde_json::Value>,
    pub tareas: Vec<MapTarea>,
    pub efectivos: Vec<MapEfectivo>,
}

#[derive(ToSchema)]
pub struct Point {
    pub lat: f64,
    pub lng: f64,
}

/// Whether a list was cut at `limit`.
#[derive(ToSchema)]
pub struct Truncated {
    pub tareas: bool,
    pub efectivos: bool,
}

#[derive(ToSchema)]
pub struct MapTarea {
    pub lat: f64,
    pub lng: f64,
    pub entity_id: Uuid,
    pub tarea_id: i64,
    pub codigo: String,
    pub titulo: String,
    pub estado: String,
    pub prioridad: i16,
    /// `BAJA`, `MEDIA`, `ALTA`, `URGENTE` or `CRITICA`
    pub priority: String,
    pub distance_m: i64,
}

#[derive(ToSchema)]
pub struct MapEfectivo {
    pub lat: f64,
    pub lng: f64,
    pub entity_id: Uuid,
    pub efectivo_id: i64,
    pub codigo_interno: String,
    pub disponibilidad: String,
    pub ubicacion_actualizada_en: Option<DateTime<Utc>>,
    pub distance_m: i64,
}

/// `GET /api/v1/admin/ops`: each figure is `null` when its source did not
/// answer in time.
#[derive(ToSchema)]
pub struct OpsView {
    /// Per worker group: `{pending, ack_pending, lag, redelivered}`, or `null`
    /// when that consumer did not answer.
    pub consumer_lag: Option<BTreeMap<String, serde_json::Value>>,
    pub jobs: Option<JobCounts>,
    pub dlq: Option<DlqSize>,
    /// The broadcaster's `/ws/stats`, as it answered.
    pub websocket: Option<serde_json::Value>,
    pub telegram: Option<TelegramDeliveries>,
    pub generated_at: DateTime<Utc>,
}

#[derive(ToSchema)]
pub struct JobCounts {
    pub by_status: BTreeMap<String, i64>,
    /// Kind → status → count.
    pub by_kind: BTreeMap<String, BTreeMap<String, i64>>,
}

#[derive(ToSchema)]
pub struct DlqSize {
    pub messages: u64,
    pub bytes: u64,
}

#[derive(ToSchema)]
pub struct TelegramDeliveries {
    pub by_status: BTreeMap<String, i64>,
    pub total: i64,
}
