//! Audit rows (§2.1 audit_log): one per business write, in its transaction.

use std::net::IpAddr;

use gad_shared::envelope::ClientInfo;
use uuid::Uuid;

use super::Tx;
use crate::job_store::redact;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub action: &'a str,
    pub severity: Severity,
    pub actor_usuario_id: Option<i64>,
    pub resource_type: &'a str,
    pub resource_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub job_id: Option<Uuid>,
    pub request_id: Option<&'a str>,
    /// The HTTP client behind the job (§6.4), when it came through ingress.
    pub client: Option<&'a ClientInfo>,
    pub success: bool,
    pub error_code: Option<&'a str>,
}

impl<'a> Entry<'a> {
    pub fn new(action: &'a str, resource_type: &'a str, resource_id: impl ToString) -> Self {
        Self {
            action,
            severity: Severity::Low,
            actor_usuario_id: None,
            resource_type,
            resource_id: resource_id.to_string(),
            before: None,
            after: None,
            job_id: None,
            request_id: None,
            client: None,
            success: true,
            error_code: None,
        }
    }
}

/// The event id is derived from the job and action, so a retried job that
/// somehow reaches this point twice cannot write a second row (unique event_id).
pub async fn record(tx: &mut Tx<'_>, e: Entry<'_>) -> Result<(), sqlx::Error> {
    let event_id = match e.job_id {
        Some(job) => Uuid::new_v5(
            &job,
            format!("{}:{}:{}", e.action, e.resource_type, e.resource_id).as_bytes(),
        ),
        None => Uuid::now_v7(),
    };
    sqlx::query(
        "INSERT INTO audit_log (event_id, actor_usuario_id, action, severity, resource_type, resource_id, before, after,
                                request_id, job_id, success, error_code, ip, user_agent)
         VALUES ($1, $2, $3, $4::audit_severity, $5, $6, $7, $8, $9, $10, $11, $12, $13::inet, $14)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(e.actor_usuario_id)
    .bind(e.action)
    .bind(e.severity.as_str())
    .bind(e.resource_type)
    .bind(&e.resource_id)
    // Row images never carry secrets: the same rule as the jobs row.
    .bind(e.before.as_ref().map(redact))
    .bind(e.after.as_ref().map(redact))
    .bind(e.request_id.map(|r| &r[..r.len().min(64)]))
    .bind(e.job_id)
    .bind(e.success)
    .bind(e.error_code)
    .bind(client_ip(e.client))
    .bind(e.client.and_then(|c| c.user_agent.as_deref()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Only a well-formed address reaches the `inet` column: an envelope from an
/// importer may carry anything, and a bad one must not fail the business write.
fn client_ip(client: Option<&ClientInfo>) -> Option<String> {
    let ip: IpAddr = client?.ip.as_deref()?.parse().ok()?;
    Some(ip.to_string())
}
