//! Read model of usuario rows (§6.3 Usuario) and the field rules of §7 that
//! ingress checks on the request and workers check again on the job.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// `{id, uuid, email, nombre, apellido, dni, telefono, telegram_id,
/// telegram_vinculado, nivel, verificado, created_at}`. Never carries the hash.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Usuario {
    pub id: i64,
    pub uuid: uuid::Uuid,
    pub email: String,
    pub nombre: String,
    pub apellido: String,
    pub dni: String,
    pub telefono: Option<String>,
    pub telegram_id: Option<i64>,
    pub telegram_vinculado: bool,
    pub nivel: i16,
    pub verificado: bool,
    #[serde(with = "crate::time::millis")]
    pub created_at: DateTime<Utc>,
}

/// The select list of [`Usuario`], for `SELECT … FROM usuarios` and `RETURNING`.
pub const COLUMNS: &str = "id, uuid, email, nombre, apellido, dni, telefono, telegram_id, \
     telegram_id IS NOT NULL AS telegram_vinculado, nivel, verificado, created_at";

/// A visible (not soft-deleted) usuario.
pub async fn find<'e, E: sqlx::PgExecutor<'e>>(db: E, id: i64) -> Result<Option<Usuario>, sqlx::Error> {
    sqlx::query_as::<_, Usuario>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM usuarios WHERE id = $1 AND deleted_at IS NULL"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

impl Usuario {
    /// The row image written to `audit_log.before`/`after`.
    pub fn audit_image(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Preferences live in `extra_data`; a missing `notif_supervision` means on (§9.3).
pub const PREF_NOTIF_SUPERVISION: &str = "notif_supervision";

pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;

/// A plausible address of at most 254 characters: one `@`, a local part of
/// 1–64 printable characters, and a dotted domain of letters, digits and hyphens.
pub fn is_valid_email(email: &str) -> bool {
    if email.chars().count() > 254 {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'@' | b'"' | b'(' | b')' | b',' | b'<' | b'>'))
        && !local.starts_with('.')
        && !local.ends_with('.');
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    local_ok && domain_ok
}

/// 5–20 of `[A-Za-z0-9-]`.
pub fn is_valid_dni(dni: &str) -> bool {
    (5..=20).contains(&dni.len()) && dni.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `^\+?[0-9 ()-]{6,20}$`.
pub fn is_valid_telefono(telefono: &str) -> bool {
    let rest = telefono.strip_prefix('+').unwrap_or(telefono);
    (6..=20).contains(&rest.len())
        && rest
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'(' | b')' | b'-'))
}

/// 8–128 characters, counted as typed (passwords are never trimmed).
pub fn is_valid_password(password: &str) -> bool {
    (PASSWORD_MIN..=PASSWORD_MAX).contains(&password.chars().count())
}

/// nombre / apellido: 2–100 characters after trimming.
pub fn is_valid_name(name: &str) -> bool {
    (2..=100).contains(&name.trim().chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_rules_of_section_7() {
        for ok in ["a@b.co", "first.last+tag@sub.example.org", "admin1@seed.invalid"] {
            assert!(is_valid_email(ok), "{ok}");
        }
        for bad in [
            "", "no-at", "a@b", "@b.co", "a@.co", "a b@c.co", "a@b..co", "a@-b.co", "a@b@c.co",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
        assert!(!is_valid_email(&format!("{}@example.org", "a".repeat(250))));
        assert!(
            is_valid_dni("12345") && is_valid_dni("AB-12345678") && !is_valid_dni("1234") && !is_valid_dni("12 345")
        );
        assert!(!is_valid_dni(&"1".repeat(21)));
        assert!(is_valid_telefono("+54 (11) 4444-5555") && is_valid_telefono("123456"));
        assert!(!is_valid_telefono("12345") && !is_valid_telefono("+54 11 abc") && !is_valid_telefono(&"1".repeat(21)));
        assert!(is_valid_password("12345678") && !is_valid_password("1234567") && !is_valid_password(&"x".repeat(129)));
        assert!(is_valid_password("ñññññññ😀"));
        assert!(is_valid_name(" Al ") && !is_valid_name(" A ") && !is_valid_name(&"n".repeat(101)));
    }
}
