//! `/api/v1/auth` routes (filled in by the domain work).

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}
