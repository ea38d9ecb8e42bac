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
            Ok(v) => Some(v),
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
