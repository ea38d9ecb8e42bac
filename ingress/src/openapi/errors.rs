//! The §7 error model in the document: one schema per status, whose `error`
//! lists exactly the codes that status carries, so a client (and the schema
//! fuzzer) can tell an undocumented code from a documented one.

use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{RefOr, schema};

/// Status, its codes, and when it is sent.
pub const CODES: &[(u16, &[&str], &str)] = &[
    (400, &["bad_request", "invalid_json"], "Malformed syntax"),
    (
        401,
        &[
            "not_authenticated",
            "invalid_token",
            "token_expired",
            "invalid_credentials",
        ],
        "Missing, bad, expired or revoked token; failed login",
    ),
    (403, &["forbidden"], "Authenticated, but nivel too low or not self"),
    (
        404,
        &["not_found", "no_efectivo_available"],
        "Missing, soft-deleted or invisible resource; emergency with no unit",
    ),
    (
        409,
        &[
            "invalid_transition",
            "task_closed",
            "duplicate",
            "schedule_overlap",
            "efectivo_held",
            "efectivo_unavailable",
            "managed_state",
            "idempotency_key_reused",
            "job_running",
            "job_finished",
            "job_cancelled",
            // Operator actions on the dead-letter queue.
            "job_not_dead",
            "dlq_undecodable",
            "dlq_redacted",
        ],
        "Conflict with the current state",
    ),
    (410, &["endpoint_removed"], "Removed legacy endpoint"),
    (413, &["payload_too_large"], "Body larger than 1 MiB"),
    (415, &["unsupported_media_type"], "Wrong media type"),
    (
        422,
        &[
            "validation_failed",
            "estado_read_only",
            "naive_timestamp",
            "implausible_location",
        ],
        "Invalid input; every invalid field is listed in `details.fields`",
    ),
    (429, &["rate_limited"], "Over the rate limit"),
    (
        500,
        &["internal_error"],
        "Unexpected failure; the request id links to the logs",
    ),
    (
        503,
        &["dependency_unavailable", "queue_full", "job_dead", "draining"],
        "A dependency is down, the queue is full, or the job failed after every retry",
    ),
];

pub fn schema_name(status: u16) -> String {
    format!("Error{status}")
}

pub fn description(status: u16) -> &'static str {
    CODES
        .iter()
        .find(|(s, _, _)| *s == status)
        .map_or("Error", |(_, _, when)| when)
}

/// `{error, message, details?, request_id}` with `error` one of `codes`.
pub fn schema(status: u16, codes: &[&str]) -> RefOr<Schema> {
    let error = ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(codes.iter().copied()))
        .description(Some("Machine-readable code"));
    let mut details = ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .description(Some(
            "What the code needs to be acted on (e.g. `field`, `dependency`, `estado_actual`)",
        ));
    if status == 422 {
        details = details.property(
            "fields",
            ArrayBuilder::new().items(schema::Ref::from_schema_name("FieldError")),
        );
    }
    ObjectBuilder::new()
        .property("error", error)
        .required("error")
        .property("message", ObjectBuilder::new().schema_type(Type::String))
        .required("message")
        .property("details", details)
        .property(
            "request_id",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("The `X-Request-Id` of the request")),
        )
        .description(Some(format!("§7 error body for {status}")))
        .into()
}
