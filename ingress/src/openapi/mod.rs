//! The OpenAPI 3.1 document, generated from the handlers' annotations: each
//! route module lists its own operations beside its router (`routes::*::Api`),
//! and [`refine`] adds what every operation shares (the §7 errors, the edge's
//! headers). Served at `/api/v1/openapi.json`, browsable at `/docs`.

pub mod answers;
pub mod bodies;
mod errors;
mod refine;
mod ui;

use std::sync::LazyLock;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gad_shared::http_error::ApiError;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::routes;
use crate::state::AppState;

pub const DOCUMENT_PATH: &str = "/api/v1/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "GAD",
        description = "Field operations: tareas dispatched to efectivos. Writes and PostGIS queries are \
            queued jobs: `202 {job_id, status_url, channel}` unless the client waits (`Prefer: wait=N`, \
            up to 30 s). Every endpoint also speaks MessagePack (`application/msgpack`, in `Content-Type` \
            and `Accept`). Paths work with or without a trailing slash. Every error has the body \
            `{error, message, details?, request_id}`; the codes each status carries are in `ErrorNNN`.",
    ),
    modifiers(&BearerJwt),
    security(("bearer" = [])),
    components(schemas(gad_shared::error_body::ErrorBody, gad_shared::error_body::FieldError)),
    tags(
        (name = "auth", description = "Tokens (§6.2)"),
        (name = "users", description = "Usuarios; also served under /api/v1/usuarios"),
        (name = "efectivos"), (name = "tasks"), (name = "emergency"), (name = "geo"), (name = "stats"),
        (name = "telegram"), (name = "jobs"), (name = "notifications"),
        (name = "admin", description = "Nivel 3"),
        (name = "health"),
        (name = "legacy", description = "Endpoints of the original system that were removed"),
    )
)]
struct ApiDoc;

struct BearerJwt;

impl utoipa::Modify for BearerJwt {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some("HS256 access token from /api/v1/auth/login"))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The whole document: every route module's part, then what they share.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let parts = [
        routes::auth::Api::openapi(),
        routes::users::Api::openapi(),
        routes::efectivos::Api::openapi(),
        routes::tasks::Api::openapi(),
        routes::emergency::Api::openapi(),
        routes::geo::Api::openapi(),
        routes::map::Api::openapi(),
        routes::stats::Api::openapi(),
        routes::telegram_link::Api::openapi(),
        routes::telegram_webhook::Api::openapi(),
        routes::jobs::Api::openapi(),
        routes::notifications::Api::openapi(),
        routes::admin::Api::openapi(),
        routes::ops::Api::openapi(),
        routes::dlq::Api::openapi(),
        routes::health::Api::openapi(),
        routes::legacy::Api::openapi(),
    ];
    for part in parts {
        doc.merge(part);
    }
    refine::apply(&mut doc);
    doc
}

/// Serialised once: the document cannot change while the process runs.
static JSON: LazyLock<Result<String, String>> = LazyLock::new(|| document().to_json().map_err(|e| e.to_string()));

pub fn router() -> Router<AppState> {
    Router::new().route(DOCUMENT_PATH, get(serve)).merge(ui::router())
}

async fn serve() -> Response {
    match &*JSON {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json.clone()).into_response(),
        Err(e) => ApiError::internal(format!("OpenAPI document: {e}")).into_response(),
    }
}

#[cfg(test)]
mod tests;
