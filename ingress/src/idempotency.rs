//! `Idempotency-Key` (§6.1): the same key from the same usuario within 24 h
//! returns the original job instead of running a second one; the same key
//! with a different request is 409 `idempotency_key_reused`. The memory is a
//! NATS key-value bucket (entries expire after 24 h), claimed with `create`,
//! which succeeds for exactly one request.

use async_nats::jetstream::kv;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gad_shared::error_body::FieldError;
use gad_shared::http_error::ApiError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

tokio::task_local! {
    static IDEMPOTENCY_KEY: Option<String>;
}

/// The current request's validated key, if it sent one.
pub fn current_key() -> Option<String> {
    IDEMPOTENCY_KEY.try_with(|k| k.clone()).ok().flatten()
}

/// Middleware: validates the header (≤ 128 printable ASCII) and scopes it.
pub async fn layer(req: Request, next: Next) -> Response {
    let key = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str().ok().filter(|k| valid(k)) {
            Some(k) => Some(k.to_string()),
            None => {
                return ApiError::validation(vec![FieldError::new(
                    "Idempotency-Key",
                    "invalid_format",
                    "at most 128 printable ASCII characters",
                )])
                .into_response();
            }
        },
    };
    IDEMPOTENCY_KEY.scope(key, next.run(req)).await
}

fn valid(key: &str) -> bool {
    !key.is_empty() && key.len() <= 128 && key.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    job_id: Uuid,
    /// What the key was first used for: reusing it for anything else is a conflict.
    request_hash: String,
}

pub enum Claim {
    /// First use: proceed with `job_id`.
    New,
    /// Seen before for the same request: answer with the original job.
    Existing(Uuid),
}

/// Bucket key: the usuario and a hash of the client's key (any bytes are allowed in
/// the header, only a few in a key-value key).
fn bucket_key(user_id: i64, key: &str) -> String {
    format!("u{user_id}.{}", hex::encode(Sha256::digest(key.as_bytes())))
}

pub fn request_hash(kind: &str, payload: &serde_json::Value) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update(b"\n");
    h.update(payload.to_string().as_bytes());
    hex::encode(h.finalize())
}

pub async fn claim(
    bucket: &kv::Store,
    user_id: i64,
    key: &str,
    job_id: Uuid,
    request_hash: &str,
) -> Result<Claim, ApiError> {
    let entry = Entry {
        job_id,
        request_hash: request_hash.to_string(),
    };
    let value = serde_json::to_vec(&entry).map_err(ApiError::internal)?;
    let bkey = bucket_key(user_id, key);
    match bucket.create(&bkey, value.into()).await {
        Ok(_) => Ok(Claim::New),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
            let existing = bucket
                .get(&bkey)
                .await
                .map_err(|_| ApiError::dependency_unavailable("nats"))?
                .and_then(|b| serde_json::from_slice::<Entry>(&b).ok())
                .ok_or_else(|| ApiError::dependency_unavailable("nats"))?;
            if existing.request_hash == request_hash {
                Ok(Claim::Existing(existing.job_id))
            } else {
                Err(ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request",
                ))
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "idempotency bucket unavailable");
            Err(ApiError::dependency_unavailable("nats"))
        }
    }
}

/// Frees the key when the job it was claimed for was not accepted, so a retry can proceed.
pub async fn release(bucket: &kv::Store, user_id: i64, key: &str) {
    let _ = bucket.delete(bucket_key(user_id, key)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_printable_ascii_up_to_128() {
        assert!(valid("order-42"));
        assert!(valid(&"k".repeat(128)));
        assert!(!valid(&"k".repeat(129)));
        assert!(!valid(""));
        assert!(!valid("tab\there"));
    }

    #[test]
    fn the_same_request_hashes_the_same_and_another_differently() {
        let a = request_hash("task.create", &serde_json::json!({"codigo": "A1"}));
        assert_eq!(a, request_hash("task.create", &serde_json::json!({"codigo": "A1"})));
        assert_ne!(a, request_hash("task.create", &serde_json::json!({"codigo": "A2"})));
        assert_ne!(bucket_key(1, "k"), bucket_key(2, "k"));
    }
}
