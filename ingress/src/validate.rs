//! Reading query parameters with every problem collected, so a 422 lists all
//! invalid fields at once (§7) instead of the first one.

use std::collections::HashMap;

use gad_shared::error_body::FieldError;

pub struct Params<'a> {
    raw: &'a HashMap<String, String>,
    pub errors: Vec<FieldError>,
}

impl<'a> Params<'a> {
    pub fn new(raw: &'a HashMap<String, String>) -> Self {
        Self {
            raw,
            errors: Vec::new(),
        }
    }

    /// A finite number in `min..=max`; `None` (with an error recorded) otherwise.
    pub fn number(&mut self, field: &str, required: bool, min: f64, max: f64) -> Option<f64> {
        let Some(raw) = self.raw.get(field).map(|s| s.trim()).filter(|s| !s.is_empty()) else {
            if required {
                self.errors
                    .push(FieldError::new(field, "required", format!("{field} is required")));
            }
            return None;
        };
        match raw.parse::<f64>() {
            Ok(v) if !v.is_finite() => {
                self.errors.push(FieldError::new(
                    field,
                    "invalid_number",
                    format!("{field} must be a finite number"),
                ));
                None
            }
            Ok(v) if v < min || v > max => {
                self.errors.push(FieldError::new(
                    field,
                    "out_of_range",
                    format!("{field} must be between {min} and {max}"),
                ));
                None
            }
            Ok(v) => Some(gad_shared::coordinates::snap(v)),
            Err(_) => {
                self.errors.push(FieldError::new(
                    field,
                    "invalid_number",
                    format!("{field} must be a number"),
                ));
                None
            }
        }
    }

    /// A whole number in `min..=max`.
    pub fn integer(&mut self, field: &str, required: bool, min: i64, max: i64) -> Option<i64> {
        let Some(raw) = self.raw.get(field).map(|s| s.trim()).filter(|s| !s.is_empty()) else {
            if required {
                self.errors
                    .push(FieldError::new(field, "required", format!("{field} is required")));
            }
            return None;
        };
        match raw.parse::<i64>() {
            Ok(v) if v < min || v > max => {
                self.errors.push(FieldError::new(
                    field,
                    "out_of_range",
                    format!("{field} must be between {min} and {max}"),
                ));
                None
            }
            Ok(v) => Some(v),
            Err(_) => {
                self.errors.push(FieldError::new(
                    field,
                    "invalid_integer",
                    format!("{field} must be a whole number"),
                ));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_error() {
        let raw: HashMap<String, String> = [("lat", "95"), ("lng", "abc"), ("k", "0"), ("nan", "NaN")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut p = Params::new(&raw);
        assert_eq!(p.number("lat", true, -90.0, 90.0), None);
        assert_eq!(p.number("lng", true, -180.0, 180.0), None);
        assert_eq!(p.integer("k", false, 1, 50), None);
        assert_eq!(p.number("nan", true, -1.0, 1.0), None);
        assert_eq!(p.integer("missing", true, 1, 2), None);
        assert_eq!(p.integer("absent_optional", false, 1, 2), None);
        let codes: Vec<_> = p.errors.iter().map(|e| (e.field.as_str(), e.code.as_str())).collect();
        assert_eq!(
            codes,
            vec![
                ("lat", "out_of_range"),
                ("lng", "invalid_number"),
                ("k", "out_of_range"),
                ("nan", "invalid_number"),
                ("missing", "required")
            ]
        );
    }
}

/// Fields of a JSON object body, with every problem collected (§7 rules).
pub struct Fields<'a> {
    raw: &'a serde_json::Map<String, serde_json::Value>,
    pub errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    pub fn new(raw: &'a serde_json::Map<String, serde_json::Value>) -> Self {
        Self {
            raw,
            errors: Vec::new(),
        }
    }

    pub fn has(&self, field: &str) -> bool {
        self.raw.get(field).is_some_and(|v| !v.is_null())
    }

    fn missing(&mut self, field: &str, required: bool) {
        if required {
            self.errors
                .push(FieldError::new(field, "required", format!("{field} is required")));
        }
    }

    fn fail(&mut self, field: &str, code: &str, message: String) {
        self.errors.push(FieldError::new(field, code, message));
    }

    /// A string trimmed, with its length (in characters) in `min..=max`.
    pub fn string(&mut self, field: &str, required: bool, min: usize, max: usize) -> Option<String> {
        match self.raw.get(field) {
            None | Some(serde_json::Value::Null) => {
                self.missing(field, required);
                None
            }
            Some(serde_json::Value::String(s)) => {
                let t = s.trim();
                let n = t.chars().count();
                if n < min || n > max {
                    self.fail(
                        field,
                        "invalid_length",
                        format!("{field} must have {min} to {max} characters"),
                    );
                    None
                } else {
                    Some(t.to_string())
                }
            }
            Some(_) => {
                self.fail(field, "invalid_type", format!("{field} must be a string"));
                None
            }
        }
    }

    /// A string matching `pattern` after `normalize` (e.g. upper-casing).
    pub fn pattern(
        &mut self,
        field: &str,
        required: bool,
        normalize: fn(&str) -> String,
        accept: fn(&str) -> bool,
        rule: &str,
    ) -> Option<String> {
        let raw = self.string(field, required, 0, usize::MAX)?;
        let value = normalize(&raw);
        if accept(&value) {
            Some(value)
        } else {
            self.fail(field, "invalid_format", format!("{field} must match {rule}"));
            None
        }
    }

    /// A finite number in `min..=max`.
    pub fn number(&mut self, field: &str, required: bool, min: f64, max: f64) -> Option<f64> {
        match self.raw.get(field) {
            None | Some(serde_json::Value::Null) => {
                self.missing(field, required);
                None
            }
            Some(v) => match v.as_f64() {
                Some(n) if n.is_finite() && (min..=max).contains(&n) => Some(gad_shared::coordinates::snap(n)),
                Some(_) => {
                    self.fail(
                        field,
                        "out_of_range",
                        format!("{field} must be between {min} and {max}"),
                    );
                    None
                }
                None => {
                    self.fail(field, "invalid_number", format!("{field} must be a number"));
                    None
                }
            },
        }
    }

    /// A whole number in `min..=max`.
    pub fn integer(&mut self, field: &str, required: bool, min: i64, max: i64) -> Option<i64> {
        match self.raw.get(field) {
            None | Some(serde_json::Value::Null) => {
                self.missing(field, required);
                None
            }
            Some(v) => match v.as_i64() {
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
            },
        }
    }

    pub fn boolean(&mut self, field: &str, required: bool) -> Option<bool> {
        match self.raw.get(field) {
            None | Some(serde_json::Value::Null) => {
                self.missing(field, required);
                None
            }
            Some(serde_json::Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.fail(field, "invalid_type", format!("{field} must be true or false"));
                None
            }
        }
    }

    /// One of `allowed` (exact, lower-case labels as stored).
    pub fn one_of(&mut self, field: &str, required: bool, allowed: &[&str]) -> Option<String> {
        let v = self.string(field, required, 0, 64)?;
        if allowed.contains(&v.as_str()) {
            Some(v)
        } else {
            self.fail(
                field,
                "invalid_choice",
                format!("{field} must be one of {}", allowed.join(", ")),
            );
            None
        }
    }

    /// RFC 3339 with an offset; a timestamp without one is `naive_timestamp`.
    pub fn timestamp(&mut self, field: &str, required: bool) -> Option<chrono::DateTime<chrono::Utc>> {
        let raw = self.string(field, required, 1, 64)?;
        match chrono::DateTime::parse_from_rfc3339(&raw) {
            Ok(t) => Some(t.to_utc()),
            Err(_) if chrono::NaiveDateTime::parse_from_str(&raw, "%Y-%m-%dT%H:%M:%S%.f").is_ok() => {
                self.fail(field, "naive_timestamp", format!("{field} needs a UTC offset (e.g. Z)"));
                None
            }
            Err(_) => {
                self.fail(
                    field,
                    "invalid_timestamp",
                    format!("{field} must be an RFC 3339 timestamp"),
                );
                None
            }
        }
    }

    /// A list of 1..=max distinct positive ids.
    pub fn ids(&mut self, field: &str, required: bool, max: usize) -> Option<Vec<i64>> {
        match self.raw.get(field) {
            None | Some(serde_json::Value::Null) => {
                self.missing(field, required);
                None
            }
            Some(serde_json::Value::Array(items)) => {
                let ids: Option<Vec<i64>> = items.iter().map(|v| v.as_i64().filter(|n| *n > 0)).collect();
                let distinct = ids
                    .as_ref()
                    .map(|v| v.iter().collect::<std::collections::HashSet<_>>().len());
                match (ids, distinct) {
                    (Some(v), Some(d)) if !v.is_empty() && v.len() <= max && d == v.len() => Some(v),
                    _ => {
                        self.fail(
                            field,
                            "invalid_ids",
                            format!("{field} must be 1 to {max} distinct positive ids"),
                        );
                        None
                    }
                }
            }
            Some(_) => {
                self.fail(field, "invalid_type", format!("{field} must be a list of ids"));
                None
            }
        }
    }

    /// Turns collected errors into the 422, or passes.
    pub fn finish(self) -> Result<(), gad_shared::http_error::ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(gad_shared::http_error::ApiError::validation(self.errors))
        }
    }
}

#[cfg(test)]
mod field_tests {
    use super::*;

    #[test]
    fn body_fields_report_every_problem_with_its_code() {
        let body = serde_json::json!({
            "titulo": "  abc ", "prioridad": 7, "lat": "x", "inicio_programado": "2026-11-28T10:00:00",
            "fin_programado": "2026-11-28T10:00:00Z", "tipo": "emergencia", "efectivo_ids": [1, 1], "ok": true
        });
        let map = body.as_object().cloned().unwrap_or_default();
        let mut f = Fields::new(&map);
        assert_eq!(f.string("titulo", true, 5, 200), None);
        assert_eq!(f.integer("prioridad", false, 1, 5), None);
        assert_eq!(f.number("lat", true, -90.0, 90.0), None);
        assert_eq!(f.timestamp("inicio_programado", true), None);
        assert!(f.timestamp("fin_programado", false).is_some());
        assert_eq!(f.one_of("tipo", true, &["patrullaje"]), None);
        assert_eq!(f.ids("efectivo_ids", false, 50), None);
        assert_eq!(f.boolean("ok", false), Some(true));
        assert_eq!(f.string("codigo", true, 3, 20), None);
        let codes: Vec<_> = f.errors.iter().map(|e| (e.field.as_str(), e.code.as_str())).collect();
        assert_eq!(
            codes,
            [
                ("titulo", "invalid_length"),
                ("prioridad", "out_of_range"),
                ("lat", "invalid_number"),
                ("inicio_programado", "naive_timestamp"),
                ("tipo", "invalid_choice"),
                ("efectivo_ids", "invalid_ids"),
                ("codigo", "required"),
            ]
        );
    }
}
