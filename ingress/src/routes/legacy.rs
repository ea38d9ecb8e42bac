//! The original system's unauthenticated Telegram endpoints are not carried
//! over (§6.3, §11): any method on them answers 410 `endpoint_removed`.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::any;
use gad_shared::http_error::ApiError;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for base in ["/api/v1/telegram/auth", "/api/v1/telegram/tasks"] {
        router = router
            .route(base, any(removed))
            .route(&format!("{base}/{{*rest}}"), any(removed));
    }
    router
}

#[utoipa::path(method(get, post, put, delete, patch), path = "/api/v1/telegram/{area}/{rest}", tag = "legacy",
    params(("area" = String, Path, pattern = "^(auth|tasks)$"), ("rest" = String, Path, min_length = 1)),
    responses((status = 410, description = "`endpoint_removed`: link Telegram with POST /api/v1/telegram/link-code")),
    security(()))]
async fn removed() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "endpoint_removed",
        "this endpoint was removed; link Telegram with POST /api/v1/telegram/link-code",
    )
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(removed))]
pub struct Api;
