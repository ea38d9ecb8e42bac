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
    let per_entity = ["tasks.", "efectivos."]
        .iter()
        .any(|p| topic.strip_prefix(p).is_some_and(|id| id.parse::<i64>().is_ok()));
    if aggregate || per_entity {
        // Nivel 1 access to an own task or efectivo needs PostgreSQL and comes with the domain work.
        return if caller.is_supervisor() {
            Decision::Allow
        } else {
            Decision::Deny("forbidden")
        };
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
