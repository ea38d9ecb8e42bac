//! What can be imported: each kind's job, its file columns, and the checks
//! and natural key of its rows, which are the handler's own
//! ([`crate::jobs::import`]), so a row the importer accepts is one the worker
//! accepts too.

use gad_shared::error_body::FieldError;
use serde_json::Value;

use crate::jobs::HandlerError;
use crate::jobs::import::{efectivos, locations, tareas};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportKind {
    Efectivos,
    Tareas,
    Locations,
}

/// How a CSV cell becomes a payload value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellType {
    Text,
    Number,
    Integer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub ty: CellType,
    /// A CSV file without this column is refused whole (its rows could never pass).
    pub required: bool,
}

const fn col(name: &'static str, ty: CellType, required: bool) -> Column {
    Column { name, ty, required }
}

use CellType::{Integer, Number, Text};

const EFECTIVOS: &[Column] = &[
    col("codigo_interno", Text, true),
    col("usuario_email", Text, false),
    col("usuario_dni", Text, false),
    col("rango", Text, false),
    col("unidad", Text, false),
    col("especialidad", Text, false),
    col("lat", Number, false),
    col("lng", Number, false),
];

const TAREAS: &[Column] = &[
    col("codigo", Text, true),
    col("titulo", Text, true),
    col("tipo", Text, true),
    col("inicio_programado", Text, true),
    col("delegado_email", Text, true),
    col("creador_email", Text, false),
    col("prioridad", Integer, false),
    col("descripcion", Text, false),
    col("fin_programado", Text, false),
    col("ubicacion_lat", Number, false),
    col("ubicacion_lon", Number, false),
    col("ubicacion_descripcion", Text, false),
];

const LOCATIONS: &[Column] = &[
    col("codigo_interno", Text, true),
    col("lat", Number, true),
    col("lng", Number, true),
    col("accuracy_m", Number, false),
    col("recorded_at", Text, true),
];

impl ImportKind {
    /// The job kind its rows become.
    pub fn job_kind(self) -> &'static str {
        match self {
            ImportKind::Efectivos => "import.efectivos",
            ImportKind::Tareas => "import.tareas",
            ImportKind::Locations => "import.locations",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Efectivos => "efectivos",
            ImportKind::Tareas => "tareas",
            ImportKind::Locations => "locations",
        }
    }

    pub fn columns(self) -> &'static [Column] {
        match self {
            ImportKind::Efectivos => EFECTIVOS,
            ImportKind::Tareas => TAREAS,
            ImportKind::Locations => LOCATIONS,
        }
    }

    /// Checks `payload` with the handler's rules; the row's natural key
    /// (what the handler upserts or orders by), or every broken rule.
    pub fn check(self, payload: &Value) -> Result<String, Vec<FieldError>> {
        let key = match self {
            ImportKind::Efectivos => efectivos::Params::parse(payload).map(|p| p.natural_key().to_string()),
            ImportKind::Tareas => tareas::Params::parse(payload).map(|p| p.natural_key().to_string()),
            ImportKind::Locations => locations::Params::parse(payload).map(|p| p.natural_key()),
        };
        key.map_err(|e| match e {
            HandlerError::Invalid(fields) => fields,
            other => vec![FieldError::new("payload", "invalid", other.to_string())],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codes(kind: ImportKind, payload: Value) -> Vec<(String, String)> {
        match kind.check(&payload) {
            Ok(_) => Vec::new(),
            Err(fields) => fields.into_iter().map(|f| (f.field, f.code)).collect(),
        }
    }

    #[test]
    fn keys_are_normalised_natural_keys() {
        let e = json!({"codigo_interno": " ef-9 ", "usuario_email": "a@b.example"});
        assert_eq!(ImportKind::Efectivos.check(&e), Ok("EF-9".to_string()));
        let l =
            json!({"codigo_interno": "ef-9", "lat": -34.6, "lng": -58.4, "recorded_at": "2026-01-02T03:04:05-03:00"});
        assert_eq!(
            ImportKind::Locations.check(&l),
            Ok("EF-9@2026-01-02T06:04:05Z".to_string())
        );
        let t = json!({"codigo": "imp-1", "titulo": "Ronda nocturna", "tipo": "patrullaje",
                       "inicio_programado": "2026-01-02T03:04:05Z", "delegado_email": "a@b.example"});
        assert_eq!(ImportKind::Tareas.check(&t), Ok("IMP-1".to_string()));
    }

    #[test]
    fn every_broken_rule_is_named() {
        assert_eq!(
            codes(
                ImportKind::Efectivos,
                json!({"codigo_interno": "x", "usuario_dni": "1", "lat": 1.0})
            ),
            [
                ("codigo_interno", "invalid_format"),
                ("lng", "required"),
                ("usuario_dni", "invalid_format")
            ]
            .map(|(f, c)| (f.to_string(), c.to_string()))
        );
        assert_eq!(
            codes(ImportKind::Efectivos, json!({"codigo_interno": "EF-1"})),
            [("usuario_email".to_string(), "required".to_string())]
        );
        assert_eq!(
            codes(
                ImportKind::Locations,
                json!({"codigo_interno": "EF-1", "lat": 91.0, "lng": 0.0, "recorded_at": "2026-01-02T03:04:05"})
            ),
            [("recorded_at", "naive_timestamp"), ("lat", "out_of_range")].map(|(f, c)| (f.to_string(), c.to_string()))
        );
        assert_eq!(
            codes(
                ImportKind::Tareas,
                json!({"codigo": "IMP-1", "titulo": "abc", "tipo": "patrullaje", "inicio_programado": "2026-01-02T03:04:05Z"})
            ),
            [("titulo", "invalid_length"), ("delegado_email", "required")].map(|(f, c)| (f.to_string(), c.to_string()))
        );
    }
}
