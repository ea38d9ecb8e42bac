//! The payloads of `user.create` and `user.update`, checked again here by the
//! §7 rules: ingress validated them, but a job published straight to the
//! queue was not.

use gad_shared::domain::usuario::{is_valid_dni, is_valid_email, is_valid_name, is_valid_password, is_valid_telefono};
use gad_shared::error_body::FieldError;
use serde::{Deserialize, Deserializer};

use super::super::HandlerError;

#[derive(Debug, Deserialize)]
pub struct NewUsuario {
    pub email: String,
    pub password: String,
    pub nombre: String,
    pub apellido: String,
    pub dni: String,
    #[serde(default)]
    pub telefono: Option<String>,
    #[serde(default = "default_nivel")]
    pub nivel: i16,
    #[serde(default = "default_verificado")]
    pub verificado: bool,
}

fn default_nivel() -> i16 {
    1
}

/// An administrator vouches for the people it creates (§6.3).
fn default_verificado() -> bool {
    true
}

/// A partial change; `telefono: null` clears it, an absent field is unchanged.
#[derive(Debug, Default, Deserialize)]
pub struct Changes {
    pub usuario_id: i64,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub nombre: Option<String>,
    #[serde(default)]
    pub apellido: Option<String>,
    #[serde(default)]
    pub dni: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub telefono: Option<Option<String>>,
    #[serde(default)]
    pub nivel: Option<i16>,
    #[serde(default)]
    pub verificado: Option<bool>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub current_password: Option<String>,
}

/// Tells `null` (`Some(None)`) from absent (`None`, via `default`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl Changes {
    /// Fields only nivel 3 may change.
    pub fn touches_admin_fields(&self) -> bool {
        self.nivel.is_some() || self.verificado.is_some() || self.email.is_some() || self.dni.is_some()
    }
}

#[derive(Default)]
struct Check(Vec<FieldError>);

impl Check {
    fn rule(&mut self, field: &str, ok: bool, code: &str, message: &str) {
        if !ok {
            self.0.push(FieldError::new(field, code, message));
        }
    }
    fn email(&mut self, v: &str) {
        self.rule(
            "email",
            is_valid_email(v),
            "invalid_format",
            "email must be a valid address",
        );
    }
    fn password(&mut self, v: &str) {
        self.rule(
            "password",
            is_valid_password(v),
            "invalid_length",
            "password must have 8 to 128 characters",
        );
    }
    fn name(&mut self, field: &str, v: &str) {
        self.rule(
            field,
            is_valid_name(v),
            "invalid_length",
            "must have 2 to 100 characters",
        );
    }
    fn dni(&mut self, v: &str) {
        self.rule(
            "dni",
            is_valid_dni(v),
            "invalid_format",
            "dni must be 5-20 of A-Z, a-z, 0-9 and -",
        );
    }
    fn telefono(&mut self, v: &str) {
        self.rule(
            "telefono",
            is_valid_telefono(v),
            "invalid_format",
            r"telefono must match ^\+?[0-9 ()-]{6,20}$",
        );
    }
    fn nivel(&mut self, v: i16) {
        self.rule(
            "nivel",
            (1..=3).contains(&v),
            "out_of_range",
            "nivel must be between 1 and 3",
        );
    }
    fn done(self) -> Result<(), HandlerError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(HandlerError::Invalid(self.0))
        }
    }
}

impl NewUsuario {
    /// Trims what is trimmed on input and checks every field.
    pub fn validate(mut self) -> Result<Self, HandlerError> {
        self.email = self.email.trim().to_string();
        self.nombre = self.nombre.trim().to_string();
        self.apellido = self.apellido.trim().to_string();
        self.dni = self.dni.trim().to_string();
        self.telefono = self.telefono.map(|t| t.trim().to_string());
        let mut c = Check::default();
        c.email(&self.email);
        c.password(&self.password);
        c.name("nombre", &self.nombre);
        c.name("apellido", &self.apellido);
        c.dni(&self.dni);
        if let Some(t) = &self.telefono {
            c.telefono(t);
        }
        c.nivel(self.nivel);
        c.done()?;
        Ok(self)
    }
}

impl Changes {
    pub fn validate(mut self) -> Result<Self, HandlerError> {
        let trim = |v: Option<String>| v.map(|s| s.trim().to_string());
        self.email = trim(self.email);
        self.nombre = trim(self.nombre);
        self.apellido = trim(self.apellido);
        self.dni = trim(self.dni);
        self.telefono = self.telefono.map(trim);
        let mut c = Check::default();
        c.rule(
            "usuario_id",
            self.usuario_id > 0,
            "invalid",
            "usuario_id must be a positive id",
        );
        if let Some(v) = &self.email {
            c.email(v);
        }
        if let Some(v) = &self.password {
            c.password(v);
        }
        if let Some(v) = &self.nombre {
            c.name("nombre", v);
        }
        if let Some(v) = &self.apellido {
            c.name("apellido", v);
        }
        if let Some(v) = &self.dni {
            c.dni(v);
        }
        if let Some(Some(v)) = &self.telefono {
            c.telefono(v);
        }
        if let Some(v) = self.nivel {
            c.nivel(v);
        }
        c.done()?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telefono_null_clears_and_absent_keeps() {
        let cleared: Changes = serde_json::from_value(serde_json::json!({"usuario_id": 1, "telefono": null})).unwrap();
        assert_eq!(cleared.telefono, Some(None));
        let kept: Changes = serde_json::from_value(serde_json::json!({"usuario_id": 1})).unwrap();
        assert_eq!(kept.telefono, None);
    }

    #[test]
    fn every_invalid_field_is_reported() {
        let bad = NewUsuario {
            email: "nope".into(),
            password: "short".into(),
            nombre: " A ".into(),
            apellido: "Ok".into(),
            dni: "12".into(),
            telefono: Some("abc".into()),
            nivel: 4,
            verificado: true,
        };
        let Err(HandlerError::Invalid(fields)) = bad.validate() else {
            panic!("accepted")
        };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["email", "password", "nombre", "dni", "telefono", "nivel"]);
    }
}
