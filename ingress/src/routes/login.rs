//! `POST /api/v1/auth/login` (§6.2): form or JSON credentials, Argon2id (and
//! legacy bcrypt, rehashed on success), the lockout after consecutive failures,
//! and answers that do not tell which addresses exist.

use std::collections::HashMap;

use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::{Form, Json};
use gad_shared::error_body::FieldError;
use gad_shared::http_error::ApiError;

use crate::body::JsonObject;
use crate::routes::auth::{TokenResponse, issue, wait_until};
use crate::routes::direct_audit::{self, DirectAudit};
use crate::state::AppState;

/// Consecutive failures that lock an account, and for how long (§6.2).
const MAX_FAILURES: i32 = 5;
const LOCKOUT_MINUTES: i32 = 30;

struct Credentials {
    username: String,
    password: String,
}

#[derive(sqlx::FromRow)]
struct LoginRow {
    id: i64,
    nivel: i16,
    hashed_password: String,
    locked: bool,
    valid_since: i64,
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body(content(
        (crate::openapi::bodies::LoginRequest = "application/x-www-form-urlencoded"),
        (crate::openapi::bodies::LoginRequest = "application/json"),
    )),
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, description = "Bad credentials, or the account is locked (the same answer)"),
    ),
    security(()))]
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: Request,
) -> Result<Json<TokenResponse>, ApiError> {
    let creds = credentials(req, &state).await?;
    // Per username as well as per address (§6.4): spreading guesses over
    // many addresses must not buy more of them against one account.
    if let Some(limits) = &state.rate_limits {
        let decision = limits
            .check(crate::rate_limit::Group::LoginUser, &creds.username.to_lowercase())
            .await;
        if !decision.allowed {
            return Err(crate::rate_limit::refused_error(decision));
        }
    }
    let row: Option<LoginRow> = sqlx::query_as(
        "SELECT id, nivel, hashed_password, COALESCE(bloqueado_hasta > now(), false) AS locked,
                ceil(extract(epoch FROM tokens_validos_desde))::bigint AS valid_since
         FROM usuarios WHERE lower(email) = lower($1) AND deleted_at IS NULL AND verificado",
    )
    .bind(&creds.username)
    .fetch_optional(&state.db)
    .await?;

    // Always one full verification, whatever the row, so the answer's timing
    // tells nothing about which addresses exist or are locked.
    let stored = match &row {
        Some(r) => r.hashed_password.clone(),
        None => DUMMY_HASH.to_string(),
    };
    let password = creds.password.clone();
    let matches = tokio::task::spawn_blocking(move || verify(&password, &stored))
        .await
        .map_err(ApiError::internal)?;

    let Some(user) = row else {
        let after = serde_json::json!({ "email": creds.username.chars().take(254).collect::<String>() });
        let entry = DirectAudit {
            after: Some(after),
            ..failed(None, "unknown_email")
        };
        direct_audit::record(&state.db, &headers, entry).await;
        return Err(invalid_credentials());
    };
    if user.locked {
        direct_audit::record(&state.db, &headers, failed(Some(user.id), "locked")).await;
        return Err(invalid_credentials());
    }
    if !matches {
        let locked_now = count_failure(&state, user.id).await?;
        let entry = if locked_now {
            DirectAudit {
                severity: "medium",
                ..failed(Some(user.id), "locked_out")
            }
        } else {
            failed(Some(user.id), "invalid_credentials")
        };
        direct_audit::record(&state.db, &headers, entry).await;
        return Err(invalid_credentials());
    }

    let rehashed = if is_legacy_bcrypt(&user.hashed_password) {
        let password = creds.password;
        let hashed = tokio::task::spawn_blocking(move || gad_shared::password::hash(&password))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
        Some(hashed)
    } else {
        None
    };
    sqlx::query(
        "UPDATE usuarios SET intentos_fallidos = 0, bloqueado_hasta = NULL, ultimo_acceso = now(),
                             hashed_password = COALESCE($2, hashed_password)
         WHERE id = $1",
    )
    .bind(user.id)
    .bind(rehashed.as_deref())
    .execute(&state.db)
    .await?;
    let mut entry = DirectAudit::new("login", Some(user.id), Some(user.id));
    if rehashed.is_some() {
        entry.after = Some(serde_json::json!({ "password_rehashed": "argon2id" }));
    }
    direct_audit::record(&state.db, &headers, entry).await;
    wait_until(user.valid_since).await;
    issue(&state, user.id, user.nivel)
}

/// Form fields (the original's OAuth2 password form) or the same in JSON.
async fn credentials(req: Request, state: &AppState) -> Result<Credentials, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let fields: HashMap<String, serde_json::Value> = if content_type == "application/x-www-form-urlencoded" {
        let Form(map) = Form::<HashMap<String, String>>::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("malformed form: {e}")))?;
        map.into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect()
    } else {
        let JsonObject(map) = JsonObject::from_request(req, state).await?;
        map.into_iter().collect()
    };
    let mut errors = Vec::new();
    let mut field = |name: &str, max: usize| match fields.get(name) {
        Some(serde_json::Value::String(s)) if !s.is_empty() && s.chars().count() <= max => Some(s.clone()),
        Some(serde_json::Value::String(s)) if !s.is_empty() => {
            errors.push(FieldError::new(
                name,
                "invalid_length",
                format!("{name} must have at most {max} characters"),
            ));
            None
        }
        None | Some(serde_json::Value::Null) => {
            errors.push(FieldError::new(name, "required", format!("{name} is required")));
            None
        }
        Some(serde_json::Value::String(_)) => {
            errors.push(FieldError::new(name, "required", format!("{name} is required")));
            None
        }
        Some(_) => {
            errors.push(FieldError::new(
                name,
                "invalid_type",
                format!("{name} must be a string"),
            ));
            None
        }
    };
    let username = field("username", 254);
    // Far above the 128 a password may have: only a bound on hashing work.
    let password = field("password", 1024);
    match (username, password) {
        (Some(username), Some(password)) if errors.is_empty() => Ok(Credentials {
            username: username.trim().to_string(),
            password,
        }),
        _ => Err(ApiError::validation(errors)),
    }
}

fn failed(usuario_id: Option<i64>, reason: &'static str) -> DirectAudit<'static> {
    DirectAudit {
        success: false,
        error_code: Some(reason),
        ..DirectAudit::new("login_failed", usuario_id, usuario_id)
    }
}

/// One more consecutive failure; the fifth locks the account. A lock that has
/// run out starts the count again. Returns whether this failure locked it.
async fn count_failure(state: &AppState, usuario_id: i64) -> Result<bool, ApiError> {
    let (count,): (i32,) = sqlx::query_as(
        "UPDATE usuarios u
            SET intentos_fallidos = c.n,
                bloqueado_hasta = CASE WHEN c.n >= $2 THEN now() + make_interval(mins => $3) ELSE NULL END
           FROM (SELECT id, CASE WHEN bloqueado_hasta IS NOT NULL AND bloqueado_hasta <= now() THEN 1
                                 ELSE intentos_fallidos + 1 END AS n
                   FROM usuarios WHERE id = $1 FOR UPDATE) c
          WHERE u.id = c.id
         RETURNING c.n",
    )
    .bind(usuario_id)
    .bind(MAX_FAILURES)
    .bind(LOCKOUT_MINUTES)
    .fetch_one(&state.db)
    .await?;
    Ok(count == MAX_FAILURES)
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "incorrect email or password",
    )
}

/// Hashes from the original system are bcrypt (`$2a$`, `$2b$`, `$2y$`).
fn is_legacy_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|p| stored.starts_with(p))
}

/// Blocking: Argon2id, or bcrypt for a legacy hash.
fn verify(password: &str, stored: &str) -> bool {
    if is_legacy_bcrypt(stored) {
        bcrypt::verify(password, stored).unwrap_or(false)
    } else {
        gad_shared::password::verify(password, stored)
    }
}

/// An Argon2id hash, with the parameters `gad_shared::password::hash` uses, of
/// a secret nobody kept: an unknown address costs one real verification. A
/// constant rather than made at first use, which would make that first unknown
/// address slower than the rest (and cost a hash on the request path).
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$srzRh3oxPPLahq4M04Rrvg$3jGc/GgwjCnlJnyEG0D3H572ZflAxfASsN+AL22krCc";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_bcrypt_and_argon2_hashes_both_verify() {
        let bcrypt_hash =
            bcrypt::hash_with_salt("legacy-pass", 4, [7u8; 16]).map(|h| h.format_for_version(bcrypt::Version::TwoB));
        let bcrypt_hash = bcrypt_hash.unwrap_or_default();
        assert!(is_legacy_bcrypt(&bcrypt_hash));
        assert!(verify("legacy-pass", &bcrypt_hash));
        assert!(!verify("other-pass", &bcrypt_hash));
        let argon = gad_shared::password::hash("new-pass-1").unwrap_or_default();
        assert!(!is_legacy_bcrypt(&argon));
        assert!(verify("new-pass-1", &argon) && !verify("new-pass-2", &argon));
        assert!(!verify("x", "$2b$garbage"));
    }

    /// Same parameters as real hashes, or unknown addresses would answer at another speed.
    #[test]
    fn the_dummy_hash_has_the_parameters_of_real_ones() {
        let real = gad_shared::password::hash("anything").unwrap_or_default();
        let params = |h: &str| h.split('$').take(4).collect::<Vec<_>>().join("$");
        assert_eq!(params(DUMMY_HASH), params(&real));
    }
}
