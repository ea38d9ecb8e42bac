//! `user.delete` (nivel 3): soft delete. Its tokens die with it: the bump of
//! `tokens_validos_desde` commits with the delete and is mirrored after.

use gad_shared::domain::usuario::{COLUMNS, Usuario};
use gad_shared::envelope::JobEnvelope;
use gad_shared::job::JobResult;
use serde::Deserialize;
use serde_json::json;

use super::super::{HandlerContext, HandlerError};
use super::access::{self, Begun};
use super::revocation::{self, BUMP, VALID_SINCE};
use crate::effects::audit::{self, Entry, Severity};

#[derive(Debug, Deserialize)]
struct Target {
    usuario_id: i64,
}

#[derive(sqlx::FromRow)]
struct Deleted {
    #[sqlx(flatten)]
    usuario: Usuario,
    valid_since: i64,
}

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let target: Target = access::payload(job)?;
    let (mut tx, actor) = match access::begin(ctx, job).await? {
        Begun::Done(prior) => return Ok(prior),
        Begun::Run(tx, actor) => (tx, actor),
    };
    if !actor.is_admin() {
        return Err(HandlerError::forbidden());
    }
    let before = access::lock(&mut tx, target.usuario_id).await?.usuario;
    let sql = format!(
        "UPDATE usuarios SET deleted_at = now(), tokens_validos_desde = {BUMP}
         WHERE id = $1 RETURNING {COLUMNS}, {VALID_SINCE} AS valid_since"
    );
    let deleted: Deleted = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(target.usuario_id)
        .fetch_one(&mut *tx)
        .await?;
    let mut after = deleted.usuario.audit_image();
    after["deleted"] = json!(true);
    audit::record(
        &mut tx,
        Entry {
            severity: Severity::High,
            actor_usuario_id: Some(actor.usuario_id),
            before: Some(before.audit_image()),
            after: Some(after),
            job_id: Some(job.job_id),
            request_id: job.request_id.as_deref(),
            client: job.client.as_ref(),
            ..Entry::new("user_disabled", "usuario", target.usuario_id)
        },
    )
    .await?;
    let result = access::finish(
        tx,
        job,
        JobResult {
            http_status: 200,
            body: json!(deleted.usuario),
        },
    )
    .await?;
    revocation::publish(ctx, target.usuario_id, deleted.valid_since).await;
    Ok(result)
}
