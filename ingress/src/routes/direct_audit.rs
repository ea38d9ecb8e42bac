//! Audit rows ingress writes itself, for the bookkeeping that is direct rather
//! than a job (§ conventions: login counters, logout, unlock). Business writes
//! are audited by their jobs, in their own transactions.

use axum::http::HeaderMap;
use gad_shared::http_error::current_request_id;
use sqlx::PgPool;

pub struct DirectAudit<'a> {
    pub action: &'a str,
    /// `low` unless the event deserves attention (a lockout).
    pub severity: &'a str,
    pub actor_usuario_id: Option<i64>,
    pub resource_id: Option<i64>,
    pub after: Option<serde_json::Value>,
    pub success: bool,
    pub error_code: Option<&'a str>,
}

impl<'a> DirectAudit<'a> {
    pub fn new(action: &'a str, actor_usuario_id: Option<i64>, resource_id: Option<i64>) -> Self {
        Self {
            action,
            severity: "low",
            actor_usuario_id,
            resource_id,
            after: None,
            success: true,
            error_code: None,
        }
    }
}

/// Writes the row; a failure is logged and swallowed, because refusing a login
/// or a logout for want of its audit row would turn an audit outage into an
/// authentication outage.
pub async fn record(db: &PgPool, headers: &HeaderMap, a: DirectAudit<'_>) {
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect::<String>());
    let request_id = current_request_id().map(|r| r.chars().take(64).collect::<String>());
    let written = sqlx::query(
        "INSERT INTO audit_log (actor_usuario_id, action, severity, resource_type, resource_id, after, request_id,
                                user_agent, success, error_code, ip)
         VALUES ($1, $2, $3::audit_severity, 'usuario', $4, $5, $6, $7, $8, $9, $10::inet)",
    )
    .bind(a.actor_usuario_id)
    .bind(a.action)
    .bind(a.severity)
    .bind(a.resource_id.map(|id| id.to_string()))
    .bind(a.after)
    .bind(request_id)
    .bind(user_agent)
    .bind(a.success)
    .bind(a.error_code)
    .bind(crate::client::current().and_then(|c| c.ip))
    .execute(db)
    .await;
    if let Err(e) = written {
        tracing::warn!(error = %e, action = a.action, "audit row not written");
    }
}
