//! The one place errors become HTTP responses: a status, the §7 JSON body with
//! the request id, and the headers some statuses require. Internal causes are
//! logged once here and never sent to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::AuthError;
use crate::error_body::{ErrorBody, FieldError};

tokio::task_local! {
    /// The `X-Request-Id` of the request being handled, so an error body built
    /// deep in a handler carries it without threading it through every call.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Boxed: handlers return `Result<_, ApiError>` everywhere, so the error stays small.
    pub body: Box<ErrorBody>,
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: Box::new(ErrorBody::new(error, message)),
            retry_after_s: None,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.body.details = Some(details);
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }

    pub fn validation(fields: Vec<FieldError>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "invalid input")
            .with_details(serde_json::json!({ "fields": fields }))
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "your role does not allow this")
    }

    pub fn dependency_unavailable(dependency: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "dependency_unavailable",
            format!("{dependency} is unavailable"),
        )
        .with_details(serde_json::json!({ "dependency": dependency }))
        .retry_after(2)
    }

    /// An unexpected failure: the cause is logged, the client sees only the request id.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "internal error")
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string())
    }
}

/// Direct reads: PostgreSQL trouble is a soft dependency failing (503), any
/// other database error is ours (500, logged, never shown).
impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => ApiError::not_found("resource"),
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                tracing::warn!(error = %e, "postgres unavailable");
                ApiError::dependency_unavailable("postgres")
            }
            sqlx::Error::Database(ref db) if db.code().is_some_and(|c| c == "57014" || c.starts_with("08")) => {
                tracing::warn!(error = %e, "postgres unavailable");
                ApiError::dependency_unavailable("postgres")
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(mut self) -> Response {
        if self.body.request_id.is_none() {
            self.body.request_id = current_request_id();
        }
        let mut response = (self.status, axum::Json(&*self.body)).into_response();
        let headers = response.headers_mut();
        if let Some(s) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Middleware: takes the client's `X-Request-Id` (if sane) or makes one,
/// scopes it for error bodies, and echoes it on the response.
pub async fn request_id_layer(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let mut response = REQUEST_ID.scope(id.clone(), next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// A job the queue did not take.
impl From<crate::submit::SubmitError> for ApiError {
    fn from(e: crate::submit::SubmitError) -> Self {
        use crate::submit::SubmitError;
        match e {
            SubmitError::Unavailable(cause) => {
                tracing::warn!(%cause, "job not accepted");
                ApiError::dependency_unavailable("nats")
            }
            SubmitError::QueueFull => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "queue_full", "the job queue is full").retry_after(5)
            }
            other => ApiError::internal(other),
        }
    }
}

/// Operator actions on the dead-letter queue (§6.3).
impl From<crate::dlq::DlqError> for ApiError {
    fn from(e: crate::dlq::DlqError) -> Self {
        use crate::dlq::DlqError;
        match e {
            DlqError::NotFound => ApiError::not_found("dead-letter record"),
            DlqError::NotDead(status) => ApiError::new(StatusCode::CONFLICT, "job_not_dead", e.to_string())
                .with_details(serde_json::json!({ "status": status.as_str() })),
            DlqError::Undecodable => ApiError::new(StatusCode::CONFLICT, "dlq_undecodable", e.to_string()),
            DlqError::Redacted => ApiError::new(StatusCode::CONFLICT, "dlq_redacted", e.to_string()),
            DlqError::Nats(_) | DlqError::Timeout(_) => {
                tracing::warn!(error = %e, "dead-letter queue unavailable");
                ApiError::dependency_unavailable("nats")
            }
            DlqError::Database(db) => db.into(),
        }
    }
}
