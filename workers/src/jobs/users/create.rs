//! `user.create` (nivel 3): a new usuario, its password hashed here, off the
//! async runtime. A duplicate email or dni is 409 `duplicate` with the field,
//! mapped from the unique index that refused it.

use gad_shared::domain::usuario::{COLUMNS, Usuario};
use gad_shared::envelope::JobEnvelope;
use gad_shared::job::JobResult;
use serde_json::json;

use super::super::{HandlerContext, HandlerError};
use super::access::{self, Begun};
use super::fields::NewUsuario;
use crate::effects::audit::{self, Entry, Severity};

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let new = access::payload::<NewUsuario>(job)?.validate()?;
    let (mut tx, actor) = match access::begin(ctx, job).await? {
        Begun::Done(prior) => return Ok(prior),
        Begun::Run(tx, actor) => (tx, actor),
    };
    if !actor.is_admin() {
        return Err(HandlerError::forbidden());
    }
    let hashed = access::hash_password(new.password.clone()).await?;
    let sql = format!(
        "INSERT INTO usuarios (email, hashed_password, nombre, apellido, dni, telefono, nivel, verificado)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    );
    let usuario: Usuario = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&new.email)
        .bind(&hashed)
        .bind(&new.nombre)
        .bind(&new.apellido)
        .bind(&new.dni)
        .bind(&new.telefono)
        .bind(new.nivel)
        .bind(new.verificado)
        .fetch_one(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        Entry {
            severity: Severity::Medium,
            actor_usuario_id: Some(actor.usuario_id),
            after: Some(usuario.audit_image()),
            job_id: Some(job.job_id),
            request_id: job.request_id.as_deref(),
            client: job.client.as_ref(),
            ..Entry::new("user_created", "usuario", usuario.id)
        },
    )
    .await?;
    access::finish(
        tx,
        job,
        JobResult {
            http_status: 201,
            body: json!(usuario),
        },
    )
    .await
}
