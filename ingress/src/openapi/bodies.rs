//! The request bodies of §6.3 as the handlers read them. Handlers take a
//! `JsonObject` and validate field by field (so one 422 lists every invalid
//! field); these types only describe what they accept, for the document.

// Described, never built: the handlers read the same fields from a map.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use utoipa::ToSchema;

/// Form fields (`application/x-www-form-urlencoded`, the original's OAuth2
/// password form) or the same in JSON.
#[derive(ToSchema)]
pub struct LoginRequest {
    /// The usuario's email.
    #[schema(min_length = 1, max_length = 254)]
    pub username: String,
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
}

#[derive(ToSchema)]
pub struct CreateUsuario {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    #[schema(min_length = 2, max_length = 100)]
    pub nombre: String,
    #[schema(min_length = 2, max_length = 100)]
    pub apellido: String,
    #[schema(pattern = "^[A-Za-z0-9-]{5,20}$")]
    pub dni: String,
    #[schema(pattern = r"^\+?[0-9 ()-]{6,20}$")]
    pub telefono: Option<String>,
    #[schema(minimum = 1, maximum = 3, default = 1, nullable = false)]
    pub nivel: Option<i16>,
    #[schema(default = true, nullable = false)]
    pub verificado: Option<bool>,
}

/// Partial. Self may change only nombre, apellido, telefono and password
/// (with `current_password`); the rest is nivel 3 only.
#[derive(ToSchema)]
pub struct UpdateUsuario {
    #[schema(format = Email, max_length = 254, nullable = false)]
    pub email: Option<String>,
    #[schema(min_length = 8, max_length = 128, nullable = false)]
    pub password: Option<String>,
    /// Required with `password` when changing one's own.
    #[schema(min_length = 1, max_length = 1024, nullable = false)]
    pub current_password: Option<String>,
    #[schema(min_length = 2, max_length = 100, nullable = false)]
    pub nombre: Option<String>,
    #[schema(min_length = 2, max_length = 100, nullable = false)]
    pub apellido: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9-]{5,20}$", nullable = false)]
    pub dni: Option<String>,
    /// `null` clears it.
    #[schema(pattern = r"^\+?[0-9 ()-]{6,20}$")]
    pub telefono: Option<String>,
    #[schema(minimum = 1, maximum = 3, nullable = false)]
    pub nivel: Option<i16>,
    #[schema(nullable = false)]
    pub verificado: Option<bool>,
}

/// Also the answer, with every preference.
#[derive(ToSchema)]
pub struct Preferences {
    #[schema(nullable = false)]
    pub notif_supervision: Option<bool>,
}

#[derive(ToSchema)]
pub struct CreateEfectivo {
    #[schema(minimum = 1)]
    pub usuario_id: i64,
    /// Upper-cased, then `^[A-Z0-9_-]{2,50}$`.
    #[schema(pattern = "^[A-Za-z0-9_-]{2,50}$")]
    pub codigo_interno: String,
    #[schema(max_length = 50)]
    pub rango: Option<String>,
    #[schema(max_length = 100)]
    pub unidad: Option<String>,
    #[schema(max_length = 100)]
    pub especialidad: Option<String>,
    /// With `lng`.
    #[schema(minimum = -90, maximum = 90, nullable = false)]
    pub lat: Option<f64>,
    #[schema(minimum = -180, maximum = 180, nullable = false)]
    pub lng: Option<f64>,
}

/// At least one field; `null` or `""` clears a text.
#[derive(ToSchema)]
#[schema(min_properties = 1)]
pub struct UpdateEfectivo {
    #[schema(pattern = "^[A-Za-z0-9_-]{2,50}$", nullable = false)]
    pub codigo_interno: Option<String>,
    #[schema(max_length = 50)]
    pub rango: Option<String>,
    #[schema(max_length = 100)]
    pub unidad: Option<String>,
    #[schema(max_length = 100)]
    pub especialidad: Option<String>,
}

#[derive(ToSchema)]
pub struct LocationUpdate {
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
    #[schema(minimum = -180, maximum = 180)]
    pub lng: f64,
    #[schema(minimum = 0, maximum = 10000, nullable = false)]
    pub accuracy_m: Option<f64>,
    /// RFC 3339 with an offset; at most 60 s ahead of the server. An update
    /// older than the stored position is ignored.
    #[schema(nullable = false)]
    pub recorded_at: Option<DateTime<Utc>>,
}

#[derive(ToSchema)]
pub struct DisponibilidadChange {
    /// `en_tarea` is set only by the system: 409 `managed_state`.
    #[schema(value_type = String, pattern = "^(disponible|en_tarea|fuera_servicio|no_disponible)$")]
    pub disponibilidad: String,
    #[schema(max_length = 500)]
    pub motivo: Option<String>,
}

#[derive(ToSchema)]
pub struct CreateTarea {
    /// Trimmed and upper-cased, then `^[A-Z0-9_-]{3,20}$`.
    #[schema(pattern = "^[A-Za-z0-9_-]{3,20}$")]
    pub codigo: String,
    #[schema(min_length = 5, max_length = 200)]
    pub titulo: String,
    #[schema(inline)]
    pub tipo: ClientTipo,
    /// RFC 3339 with an offset.
    pub inicio_programado: DateTime<Utc>,
    #[schema(minimum = 1)]
    pub delegado_usuario_id: i64,
    #[schema(max_length = 1000)]
    pub descripcion: Option<String>,
    #[schema(minimum = 1, maximum = 5, default = 2, nullable = false)]
    pub prioridad: Option<i16>,
    /// After `inicio_programado`.
    pub fin_programado: Option<DateTime<Utc>>,
    /// With `ubicacion_lon`.
    #[schema(minimum = -90, maximum = 90)]
    pub ubicacion_lat: Option<f64>,
    #[schema(minimum = -180, maximum = 180)]
    pub ubicacion_lon: Option<f64>,
    #[schema(max_length = 200)]
    pub ubicacion_descripcion: Option<String>,
    /// Efectivo ids, distinct (nivel 1: only its own).
    #[schema(max_items = 50, nullable = false)]
    pub efectivos_asignados: Option<Vec<i64>>,
}

/// Partial: any create field except `efectivos_asignados` (use assign and
/// unassign). `estado` → 422 `estado_read_only`. `null` clears the optional ones.
#[derive(ToSchema)]
pub struct UpdateTarea {
    #[schema(pattern = "^[A-Za-z0-9_-]{3,20}$", nullable = false)]
    pub codigo: Option<String>,
    #[schema(min_length = 5, max_length = 200, nullable = false)]
    pub titulo: Option<String>,
    #[schema(inline, nullable = false)]
    pub tipo: Option<ClientTipo>,
    #[schema(nullable = false)]
    pub inicio_programado: Option<DateTime<Utc>>,
    #[schema(minimum = 1, nullable = false)]
    pub delegado_usuario_id: Option<i64>,
    #[schema(max_length = 1000)]
    pub descripcion: Option<String>,
    #[schema(minimum = 1, maximum = 5, nullable = false)]
    pub prioridad: Option<i16>,
    pub fin_programado: Option<DateTime<Utc>>,
    #[schema(minimum = -90, maximum = 90)]
    pub ubicacion_lat: Option<f64>,
    #[schema(minimum = -180, maximum = 180)]
    pub ubicacion_lon: Option<f64>,
    #[schema(max_length = 200)]
    pub ubicacion_descripcion: Option<String>,
}

/// Every tipo but `emergencia`, which only an emergency dispatch creates.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ClientTipo {
    Patrullaje,
    Investigacion,
    Vigilancia,
    Intervencion,
    Administrativa,
    Entrenamiento,
}

/// The body may be left out. `cancel` requires a motivo of 3–500 characters.
#[derive(ToSchema)]
pub struct TransitionBody {
    #[schema(max_length = 500)]
    pub motivo: Option<String>,
}

#[derive(ToSchema)]
pub struct EfectivoIds {
    /// Distinct efectivo ids.
    #[schema(min_items = 1, max_items = 50)]
    pub efectivo_ids: Vec<i64>,
}

#[derive(ToSchema)]
pub struct TaskResponse {
    #[schema(inline)]
    pub respuesta: Respuesta,
    #[schema(max_length = 500)]
    pub motivo: Option<String>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Respuesta {
    Aceptada,
    Rechazada,
}

/// §4. `telegram_id` or `reporter` is required.
#[derive(ToSchema)]
pub struct EmergencyReport {
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
    #[schema(minimum = -180, maximum = 180)]
    pub lng: f64,
    #[schema(minimum = 1)]
    pub telegram_id: Option<i64>,
    pub reporter: Option<Reporter>,
    #[schema(max_length = 1000)]
    pub descripcion: Option<String>,
}

/// A member of the public: a name or a phone at least.
#[derive(ToSchema)]
pub struct Reporter {
    #[schema(max_length = 100)]
    pub nombre: Option<String>,
    #[schema(pattern = r"^\+?[0-9 ()-]{6,20}$")]
    pub telefono: Option<String>,
}
