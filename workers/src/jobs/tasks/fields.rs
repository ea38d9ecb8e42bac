//! The tarea fields of `task.create` and `task.update` payloads, checked
//! again in the worker with the §7 rules: ingress validated them already,
//! but importers and the bot publish jobs without passing through it.

use chrono::{DateTime, Utc};
use gad_shared::domain::tarea;
use gad_shared::error_body::FieldError;
use serde_json::{Map, Value};

use super::super::HandlerError;

/// Tipos a job may create or set; `emergencia` belongs to dispatch only.
pub const CLIENT_TIPOS: [&str; 6] = [
    "patrullaje",
    "investigacion",
    "vigilancia",
    "intervencion",
    "administrativa",
    "entrenamiento",
];

/// Present fields. For the nullable ones the outer `Option` is presence and
/// the inner one the value, so an edit can clear them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFields {
    pub codigo: Option<String>,
    pub titulo: Option<String>,
    pub tipo: Option<String>,
    pub inicio_programado: Option<DateTime<Utc>>,
    pub delegado_usuario_id: Option<i64>,
    pub prioridad: Option<i16>,
    pub descripcion: Option<Option<String>>,
    pub fin_programado: Option<Option<DateTime<Utc>>>,
    /// `(lat, lon)`.
    pub ubicacion: Option<Option<(f64, f64)>>,
    pub ubicacion_descripcion: Option<Option<String>>,
}

struct Reader<'a> {
    map: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Reader<'_> {
    fn fail(&mut self, field: &str, code: &str, message: String) {
        self.errors.push(FieldError::new(field, code, message));
    }

    /// `None` absent, `Some(None)` null, `Some(Some(v))` a value; a null on a
    /// field that cannot be null is an error.
    fn value(&mut self, field: &str, required: bool, nullable: bool) -> Option<Option<&Value>> {
        match self.map.get(field) {
            None if required => {
                self.fail(field, "required", format!("{field} is required"));
                None
            }
            None => None,
            Some(Value::Null) if required || !nullable => {
                self.fail(field, "required", format!("{field} cannot be null"));
                None
            }
            Some(Value::Null) => Some(None),
            Some(v) => Some(Some(v)),
        }
    }

    fn text(&mut self, field: &str, required: bool, nullable: bool, min: usize, max: usize) -> Option<Option<String>> {
        let v = self.value(field, required, nullable)?;
        let Some(v) = v else { return Some(None) };
        match v.as_str().map(str::trim) {
            Some(s) if (min..=max).contains(&s.chars().count()) => Some(Some(s.to_string())),
            Some(_) => {
                self.fail(
                    field,
                    "invalid_length",
                    format!("{field} must have {min} to {max} characters"),
                );
                None
            }
            None => {
                self.fail(field, "invalid_type", format!("{field} must be a string"));
                None
            }
        }
    }

    fn integer(&mut self, field: &str, required: bool, min: i64, max: i64) -> Option<i64> {
        let v = self.value(field, required, false)??;
        match v.as_i64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(_) => {
                self.fail(
                    field,
                    "out_of_range",
                    format!("{field} must be between {min} and {max}"),
                );
                None
            }
            None => {
                self.fail(field, "invalid_integer", format!("{field} must be a whole number"));
                None
            }
        }
    }

    fn number(&mut self, field: &str, min: f64, max: f64) -> Option<Option<f64>> {
        let v = self.value(field, false, true)?;
        let Some(v) = v else { return Some(None) };
        match v.as_f64() {
            Some(n) if n.is_finite() && (min..=max).contains(&n) => Some(Some(gad_shared::coordinates::snap(n))),
            _ => {
                self.fail(
                    field,
                    "out_of_range",
                    format!("{field} must be a number between {min} and {max}"),
                );
                None
            }
        }
    }

    fn timestamp(&mut self, field: &str, required: bool, nullable: bool) -> Option<Option<DateTime<Utc>>> {
        let raw = self.text(field, required, nullable, 1, 64)?;
        let Some(raw) = raw else { return Some(None) };
        match timestamp(field, &raw) {
            Ok(t) => Some(Some(t)),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }
}

/// An RFC 3339 timestamp with an offset (§7); one without gets `naive_timestamp`.
pub fn timestamp(field: &str, raw: &str) -> Result<DateTime<Utc>, FieldError> {
    match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => Ok(t.to_utc()),
        Err(_) if chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f").is_ok() => Err(FieldError::new(
            field,
            "naive_timestamp",
            format!("{field} needs a UTC offset (e.g. Z)"),
        )),
        Err(_) => Err(FieldError::new(
            field,
            "invalid_timestamp",
            format!("{field} must be an RFC 3339 timestamp"),
        )),
    }
}

/// Reads the tarea fields of `map`; `create` makes the §6.3 create fields required.
pub fn parse(map: &Map<String, Value>, create: bool) -> Result<TaskFields, HandlerError> {
    parse_fields(map, create, create)
}

/// [`parse`] for a creation whose delegado is named otherwise (`import.tareas`
/// names usuarios by email): the create fields but `delegado_usuario_id` required.
pub fn parse_import(map: &Map<String, Value>) -> Result<TaskFields, HandlerError> {
    parse_fields(map, true, false)
}

fn parse_fields(map: &Map<String, Value>, create: bool, needs_delegado: bool) -> Result<TaskFields, HandlerError> {
    let mut r = Reader {
        map,
        errors: Vec::new(),
    };
    let codigo = r.text("codigo", create, false, 0, 64).flatten().and_then(|raw| {
        let c = tarea::normalize_codigo(&raw);
        if tarea::is_valid_codigo(&c) {
            Some(c)
        } else {
            r.fail(
                "codigo",
                "invalid_format",
                "codigo must match ^[A-Z0-9_-]{3,20}$".into(),
            );
            None
        }
    });
    let titulo = r.text("titulo", create, false, 5, 200).flatten();
    let tipo = r.text("tipo", create, false, 0, 64).flatten().and_then(|t| {
        if CLIENT_TIPOS.contains(&t.as_str()) {
            Some(t)
        } else {
            r.fail(
                "tipo",
                "invalid_choice",
                format!("tipo must be one of {}", CLIENT_TIPOS.join(", ")),
            );
            None
        }
    });
    let inicio_programado = r.timestamp("inicio_programado", create, false).flatten();
    let delegado_usuario_id = r.integer("delegado_usuario_id", needs_delegado, 1, i64::MAX);
    let prioridad = r.integer("prioridad", false, 1, 5).and_then(|p| i16::try_from(p).ok());
    let descripcion = r
        .text("descripcion", false, true, 0, 1000)
        .map(|d| d.filter(|d| !d.is_empty()));
    let fin_programado = r.timestamp("fin_programado", false, true);
    let lat = r.number("ubicacion_lat", -90.0, 90.0);
    let lon = r.number("ubicacion_lon", -180.0, 180.0);
    let ubicacion = match (
        map.contains_key("ubicacion_lat"),
        map.contains_key("ubicacion_lon"),
        lat,
        lon,
    ) {
        (true, false, ..) => {
            r.fail(
                "ubicacion_lon",
                "required",
                "ubicacion_lon goes with ubicacion_lat".into(),
            );
            None
        }
        (false, true, ..) => {
            r.fail(
                "ubicacion_lat",
                "required",
                "ubicacion_lat goes with ubicacion_lon".into(),
            );
            None
        }
        (_, _, Some(Some(lat)), Some(Some(lon))) => Some(Some((lat, lon))),
        (_, _, Some(None), Some(None)) => Some(None),
        (_, _, Some(_), Some(_)) => {
            r.fail(
                "ubicacion_lat",
                "required",
                "ubicacion_lat and ubicacion_lon are set or cleared together".into(),
            );
            None
        }
        _ => None,
    };
    let ubicacion_descripcion = r
        .text("ubicacion_descripcion", false, true, 0, 200)
        .map(|d| d.filter(|d| !d.is_empty()));
    if let (Some(i), Some(Some(f))) = (inicio_programado, fin_programado)
        && f <= i
    {
        r.fail(
            "fin_programado",
            "invalid_range",
            "fin_programado must be after inicio_programado".into(),
        );
    }
    if !r.errors.is_empty() {
        return Err(HandlerError::Invalid(r.errors));
    }
    Ok(TaskFields {
        codigo,
        titulo,
        tipo,
        inicio_programado,
        delegado_usuario_id,
        prioridad,
        descripcion,
        fin_programado,
        ubicacion,
        ubicacion_descripcion,
    })
}

/// A `validation_failed` on one field, for rules checked against the database.
pub fn invalid(field: &str, code: &str, message: &str) -> HandlerError {
    HandlerError::Invalid(vec![FieldError::new(field, code, message)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codes(v: Value, create: bool) -> Vec<(String, String)> {
        let map = v.as_object().cloned().unwrap_or_default();
        match parse(&map, create) {
            Err(HandlerError::Invalid(f)) => f.into_iter().map(|e| (e.field, e.code)).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn a_create_needs_its_fields_and_the_seven_rules() {
        let got = codes(json!({}), true);
        let fields: Vec<_> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            ["codigo", "titulo", "tipo", "inicio_programado", "delegado_usuario_id"]
        );
        let got = codes(
            json!({"codigo": "ab", "titulo": " abc ", "tipo": "emergencia", "inicio_programado": "2026-11-28T10:00:00",
                   "delegado_usuario_id": 1, "prioridad": 6, "descripcion": "x".repeat(1001),
                   "ubicacion_lat": 91.0, "ubicacion_lon": 0.0}),
            true,
        );
        let expected = [
            ("codigo", "invalid_format"),
            ("titulo", "invalid_length"),
            ("tipo", "invalid_choice"),
            ("inicio_programado", "naive_timestamp"),
            ("prioridad", "out_of_range"),
            ("descripcion", "invalid_length"),
            ("ubicacion_lat", "out_of_range"),
        ];
        assert_eq!(got, expected.map(|(f, c)| (f.to_string(), c.to_string())));
    }

    #[test]
    fn values_are_normalised_and_edits_may_clear_nullable_fields() {
        let ok = parse(
            json!({"codigo": " pat-1 ", "titulo": "  Ronda nocturna ", "tipo": "patrullaje",
                   "inicio_programado": "2026-11-28T10:00:00-03:00", "delegado_usuario_id": 7,
                   "ubicacion_lat": -34.6, "ubicacion_lon": -58.4})
            .as_object()
            .unwrap_or(&Map::new()),
            true,
        );
        let ok = ok.unwrap_or_default();
        assert_eq!(ok.codigo.as_deref(), Some("PAT-1"));
        assert_eq!(ok.titulo.as_deref(), Some("Ronda nocturna"));
        assert_eq!(ok.ubicacion, Some(Some((-34.6, -58.4))));
        assert_eq!(
            ok.inicio_programado.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-11-28T13:00:00+00:00")
        );

        let edit = parse(
            json!({"descripcion": null, "ubicacion_lat": null, "ubicacion_lon": null})
                .as_object()
                .unwrap_or(&Map::new()),
            false,
        );
        let edit = edit.unwrap_or_default();
        assert_eq!(edit.descripcion, Some(None));
        assert_eq!(edit.ubicacion, Some(None));
        assert_eq!(edit.codigo, None);

        assert_eq!(
            codes(json!({"titulo": null}), false),
            [("titulo".to_string(), "required".to_string())]
        );
        assert_eq!(
            codes(json!({"ubicacion_lat": 1.0}), false),
            [("ubicacion_lon".to_string(), "required".to_string())]
        );
        assert_eq!(
            codes(
                json!({"inicio_programado": "2026-11-28T10:00:00Z", "fin_programado": "2026-11-28T10:00:00Z"}),
                false
            ),
            [("fin_programado".to_string(), "invalid_range".to_string())]
        );
    }
}
