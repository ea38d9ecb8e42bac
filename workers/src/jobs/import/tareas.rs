//! `import.tareas`: a programada tarea created when none has the row's
//! `codigo` yet; an existing one is left as it is (200 with it, instead of
//! 201). Its delegado and creador are named by email (the creador defaults to
//! the delegado). The fields follow `task.create`'s rules; an imported tarea
//! has no asignaciones and pages nobody (no urgent alert): it only appears on
//! the board (`task_created`).

use gad_shared::envelope::JobEnvelope;
use gad_shared::error_body::FieldError;
use gad_shared::job::JobResult;
use serde::Deserialize;
use serde_json::json;

use super::{check_email, usuario_by};
use crate::effects::job_guard;
use crate::jobs::efectivos::field_rejection;
use crate::jobs::tasks::access;
use crate::jobs::tasks::create::{self, Creation};
use crate::jobs::tasks::fields::{self, TaskFields};
use crate::jobs::{HandlerContext, HandlerError};

/// Imported tareas count as created through the API (`origen` is a closed set).
const ORIGEN: &str = "api";

#[derive(Debug, Clone)]
pub struct Params {
    pub fields: TaskFields,
    pub delegado_email: String,
    pub creador_email: Option<String>,
}

#[derive(Deserialize)]
struct Emails {
    #[serde(default)]
    delegado_email: Option<String>,
    #[serde(default)]
    creador_email: Option<String>,
}

impl Params {
    /// `task.create`'s field rules (every error at once), with the usuarios by email.
    pub fn parse(payload: &serde_json::Value) -> Result<Self, HandlerError> {
        let map = payload
            .as_object()
            .ok_or_else(|| fields::invalid("payload", "invalid", "payload must be an object"))?;
        let (fields, mut errors) = match fields::parse_import(map) {
            Ok(fields) => (Some(fields), Vec::new()),
            Err(HandlerError::Invalid(errors)) => (None, errors),
            Err(other) => return Err(other),
        };
        let mut emails: Emails = crate::jobs::efectivos::parse(payload)?;
        check_email(&mut errors, "delegado_email", &mut emails.delegado_email);
        check_email(&mut errors, "creador_email", &mut emails.creador_email);
        if emails.delegado_email.is_none() && errors.iter().all(|e| e.field != "delegado_email") {
            errors.push(FieldError::new(
                "delegado_email",
                "required",
                "delegado_email is required",
            ));
        }
        match (fields, emails.delegado_email) {
            (Some(fields), Some(delegado_email)) if errors.is_empty() => Ok(Params {
                fields,
                delegado_email,
                creador_email: emails.creador_email,
            }),
            _ => Err(HandlerError::Invalid(errors)),
        }
    }

    /// What the tarea is known by: its normalised codigo.
    pub fn natural_key(&self) -> &str {
        self.fields.codigo.as_deref().unwrap_or_default()
    }
}

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let p = Params::parse(&job.payload)?;
    let f = &p.fields;
    let (Some(codigo), Some(titulo), Some(tipo), Some(inicio)) = (&f.codigo, &f.titulo, &f.tipo, f.inicio_programado)
    else {
        return Err(fields::invalid("payload", "required", "create fields missing"));
    };
    let mut tx = ctx.db.begin().await?;
    if let Some(prior) = job_guard::lock(&mut tx, job.job_id).await? {
        return Ok(prior);
    }
    let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM tareas WHERE codigo = $1")
        .bind(codigo)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(id) = existing {
        return access::finish_with(tx, job, id, 200).await;
    }
    let delegado = usuario_by(&mut tx, Some(&p.delegado_email), None)
        .await?
        .ok_or_else(|| field_rejection("delegado_email", "not_found", "no usuario has delegado_email"))?;
    let creador = match &p.creador_email {
        Some(email) => usuario_by(&mut tx, Some(email), None)
            .await?
            .ok_or_else(|| field_rejection("creador_email", "not_found", "no usuario has creador_email"))?,
        None => delegado,
    };
    let t = create::insert(
        &mut tx,
        Creation {
            codigo,
            titulo,
            tipo,
            inicio,
            delegado,
            f,
            creador,
            origen: ORIGEN,
            efectivos: &[],
            actor: job.submitted_by,
        },
        job,
    )
    .await?;
    access::finish(
        tx,
        job,
        JobResult {
            http_status: 201,
            body: json!(t),
        },
    )
    .await
}
