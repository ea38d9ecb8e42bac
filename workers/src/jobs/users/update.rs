//! `user.update`: a partial change. Self may change nombre, apellido,
//! telefono and password (proving the current one); nivel 3 may change
//! everything. A nivel change, a password change or a disable ends the
//! usuario's tokens.

use gad_shared::domain::usuario::{COLUMNS, Usuario};
use gad_shared::envelope::JobEnvelope;
use gad_shared::error_body::FieldError;
use gad_shared::job::JobResult;
use serde_json::json;

use super::super::{HandlerContext, HandlerError};
use super::access::{self, Begun};
use super::fields::Changes;
use super::revocation::{self, BUMP, VALID_SINCE};
use crate::effects::audit::{self, Entry, Severity};

#[derive(sqlx::FromRow)]
struct Updated {
    #[sqlx(flatten)]
    usuario: Usuario,
    valid_since: i64,
}

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let changes = access::payload::<Changes>(job)?.validate()?;
    let id = changes.usuario_id;
    let (mut tx, actor) = match access::begin(ctx, job).await? {
        Begun::Done(prior) => return Ok(prior),
        Begun::Run(tx, actor) => (tx, actor),
    };
    let is_self = actor.usuario_id == id;
    if !actor.is_admin() && (!is_self || changes.touches_admin_fields()) {
        return Err(HandlerError::forbidden());
    }
    let target = access::lock(&mut tx, id).await?;
    let before = target.usuario;

    let hashed = match &changes.password {
        Some(new) => {
            if is_self {
                let current = changes.current_password.clone().unwrap_or_default();
                let stored = target.hashed_password.clone();
                if !access::blocking(move || gad_shared::password::verify(&current, &stored)).await? {
                    return Err(HandlerError::Invalid(vec![FieldError::new(
                        "current_password",
                        "incorrect",
                        "current_password does not match",
                    )]));
                }
            }
            Some(access::hash_password(new.clone()).await?)
        }
        None => None,
    };
    let role_changed = changes.nivel.is_some_and(|n| n != before.nivel);
    let disabled = changes.verificado == Some(false) && before.verificado;
    let bump = role_changed || disabled || hashed.is_some();

    let sql = format!(
        "UPDATE usuarios SET
            email = COALESCE($2, email), nombre = COALESCE($3, nombre), apellido = COALESCE($4, apellido),
            dni = COALESCE($5, dni), telefono = CASE WHEN $6 THEN $7 ELSE telefono END,
            nivel = COALESCE($8, nivel), verificado = COALESCE($9, verificado),
            hashed_password = COALESCE($10, hashed_password),
            tokens_validos_desde = CASE WHEN $11 THEN {BUMP} ELSE tokens_validos_desde END
         WHERE id = $1 RETURNING {COLUMNS}, {VALID_SINCE} AS valid_since"
    );
    let updated: Updated = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(&changes.email)
        .bind(&changes.nombre)
        .bind(&changes.apellido)
        .bind(&changes.dni)
        .bind(changes.telefono.is_some())
        .bind(changes.telefono.clone().flatten())
        .bind(changes.nivel)
        .bind(changes.verificado)
        .bind(&hashed)
        .bind(bump)
        .fetch_one(&mut *tx)
        .await?;
    let after = updated.usuario;

    let mut after_image = after.audit_image();
    if hashed.is_some() {
        after_image["password_changed"] = json!(true);
    }
    let other_change = hashed.is_some() || {
        let mut a = after.clone();
        a.nivel = before.nivel;
        a.verificado = before.verificado;
        a != before
    };
    let mut actions = Vec::new();
    if role_changed {
        actions.push(("role_changed", Severity::High));
    }
    if disabled {
        actions.push(("user_disabled", Severity::High));
    }
    if other_change || actions.is_empty() {
        actions.push(("user_updated", Severity::Low));
    }
    for (action, severity) in actions {
        audit::record(
            &mut tx,
            Entry {
                severity,
                actor_usuario_id: Some(actor.usuario_id),
                before: Some(before.audit_image()),
                after: Some(after_image.clone()),
                job_id: Some(job.job_id),
                request_id: job.request_id.as_deref(),
                client: job.client.as_ref(),
                ..Entry::new(action, "usuario", id)
            },
        )
        .await?;
    }
    let result = access::finish(
        tx,
        job,
        JobResult {
            http_status: 200,
            body: json!(after),
        },
    )
    .await?;
    if bump {
        revocation::publish(ctx, id, updated.valid_since).await;
    }
    Ok(result)
}
