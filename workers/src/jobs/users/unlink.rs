//! `telegram.unlink` (self; nivel 3 for others): `telegram_id = NULL`, so the
//! chat no longer acts as the usuario and gets no more notifications.

use gad_shared::domain::usuario::{COLUMNS, Usuario};
use gad_shared::envelope::JobEnvelope;
use gad_shared::job::JobResult;
use serde::Deserialize;
use serde_json::json;

use super::super::{HandlerContext, HandlerError};
use super::access::{self, Begun};
use crate::effects::audit::{self, Entry, Severity};

#[derive(Debug, Deserialize)]
struct Target {
    usuario_id: i64,
}

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let target: Target = access::payload(job)?;
    let (mut tx, actor) = match access::begin(ctx, job).await? {
        Begun::Done(prior) => return Ok(prior),
        Begun::Run(tx, actor) => (tx, actor),
    };
    if target.usuario_id != actor.usuario_id && !actor.is_admin() {
        return Err(HandlerError::forbidden());
    }
    let before = access::lock(&mut tx, target.usuario_id).await?.usuario;
    let sql = format!("UPDATE usuarios SET telegram_id = NULL WHERE id = $1 RETURNING {COLUMNS}");
    let usuario: Usuario = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(target.usuario_id)
        .fetch_one(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        Entry {
            severity: Severity::Medium,
            actor_usuario_id: Some(actor.usuario_id),
            before: Some(before.audit_image()),
            after: Some(usuario.audit_image()),
            job_id: Some(job.job_id),
            request_id: job.request_id.as_deref(),
            client: job.client.as_ref(),
            ..Entry::new("telegram_unlinked", "usuario", target.usuario_id)
        },
    )
    .await?;
    access::finish(
        tx,
        job,
        JobResult {
            http_status: 200,
            body: json!(usuario),
        },
    )
    .await
}
