//! The authenticated caller, extracted from `Authorization: Bearer`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use gad_shared::auth::{AuthError, Caller};
use gad_shared::http_error::ApiError;

use crate::state::AppState;

pub struct Authenticated(pub Caller);

/// The caller of this request's bearer token, already verified by the rate
/// limiter (which keys on it) within this request.
#[derive(Clone)]
pub struct Verified(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or(AuthError::Missing)?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .ok_or(AuthError::Invalid)?;
        // Without the revocation mirror a revoked token would pass.
        if !state.nats.revocations_loaded() {
            return Err(ApiError::dependency_unavailable("nats"));
        }
        if let Some(Verified(caller)) = parts.extensions.get::<Verified>().cloned() {
            return Ok(Authenticated(caller));
        }
        Ok(Authenticated(state.verifier.verify(token.trim())?))
    }
}

/// Nivel ≥ 2.
pub fn require_supervisor(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_supervisor() {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}
