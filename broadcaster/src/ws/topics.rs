//! Who may subscribe to which topic (§8).

use gad_shared::auth::Caller;
use gad_shared::envelope;
use gad_shared::job::JobRecord;
use uuid::Uuid;

use crate::state::AppState;

pub enum Decision {
    Allow,
    /// Allowed, with the job's current status to send right away.
    AllowJob(Box<JobRecord>),
    Deny(&'static str),
}

pub async fn authorize(state: &AppState, caller: &Caller, topic: &str) -> Decision {
    if topic == format!("user.{}", caller.user_id) {
        return Decision::Allow;
    }
    if let Some(id) = topic.strip_prefix("jobs.") {
        return job_topic(state, caller, id).await;
    }
    let aggregate = matches!(topic, "tasks" | "efectivos" | "alerts");
    let task = topic.strip_prefix("tasks.").and_then(|id| id.parse::<i64>().ok());
    let efectivo = topic.strip_prefix("efectivos.").and_then(|id| id.parse::<i64>().ok());
    if caller.is_supervisor() && (aggregate || task.is_some() || efectivo.is_some()) {
        return Decision::Allow;
    }
    if aggregate {
        return Decision::Deny("forbidden");
    }
    // Nivel 1: only an own task (delegated or assigned) or its own unit.
    let own = match (task, efectivo) {
        (Some(id), _) => gad_shared::domain::tarea::is_own(&state.db, id, caller.user_id).await,
        (_, Some(id)) => own_efectivo(state, id, caller.user_id).await,
        _ => Ok(false),
    };
    match own {
        Ok(true) => return Decision::Allow,
        Ok(false) if task.is_some() || efectivo.is_some() => return Decision::Deny("forbidden"),
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(error = %e, topic, "ownership check failed; subscription denied");
            return Decision::Deny("unavailable");
        }
    }
    if topic.starts_with("user.") {
        return Decision::Deny("forbidden");
    }
    Decision::Deny("unknown_topic")
}

async fn job_topic(state: &AppState, caller: &Caller, id: &str) -> Decision {
    let Ok(job_id) = Uuid::parse_str(id) else {
        return Decision::Deny("unknown_topic");
    };
    let record = match state.job_status.get(job_id.to_string()).await {
        Ok(Some(bytes)) => envelope::decode::<JobRecord>(&bytes, None).ok(),
        _ => None,
    };
    match record {
        Some(r) if caller.is_supervisor() || r.submitted_by == Some(caller.user_id) => Decision::AllowJob(Box::new(r)),
        // Someone else's job: not confirmed to exist.
        Some(_) => Decision::Deny("not_found"),
        None if caller.is_supervisor() => Decision::Allow,
        None => Decision::Deny("not_found"),
    }
}

async fn own_efectivo(state: &AppState, id: i64, usuario: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM efectivos WHERE id = $1 AND usuario_id = $2 AND deleted_at IS NULL)",
    )
    .bind(id)
    .bind(usuario)
    .fetch_one(&state.db)
    .await
}
