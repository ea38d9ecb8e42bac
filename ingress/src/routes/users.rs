//! `/api/v1/users` routes (filled in by the domain work).

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}
