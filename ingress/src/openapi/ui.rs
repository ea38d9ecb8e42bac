//! Swagger UI at `/docs`, its assets compiled into the binary (vendored at
//! build time, so neither the build nor a browser reaches another site).
//!
//! Ingress trims trailing slashes before routing, so the page is served at
//! `/docs` itself with a `<base href="/docs/">`: the page's relative asset
//! links then resolve under `/docs/` without the `/docs` → `/docs/` redirect
//! that would loop.

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gad_shared::http_error::ApiError;
use utoipa_swagger_ui::Config;

use super::DOCUMENT_PATH;
use crate::state::AppState;

/// The API's own policy forbids everything a page needs; this one lets the
/// page load its own scripts, styles and images, and nothing from elsewhere.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                   frame-ancestors 'none'";

static CONFIG: LazyLock<Arc<Config<'static>>> = LazyLock::new(|| Arc::new(Config::new([DOCUMENT_PATH])));

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/docs", get(index))
        .route("/docs/{*file}", get(asset))
}

async fn index() -> Response {
    file("index.html")
}

async fn asset(Path(file_path): Path<String>) -> Response {
    file(&file_path)
}

fn file(path: &str) -> Response {
    let found = match utoipa_swagger_ui::serve(path, CONFIG.clone()) {
        Ok(found) => found,
        Err(e) => return ApiError::internal(format!("swagger ui: {e}")).into_response(),
    };
    let Some(found) = found else {
        return ApiError::not_found("file").into_response();
    };
    let body = if path == "index.html" {
        let html = String::from_utf8_lossy(&found.bytes);
        html.replacen("<head>", "<head><base href=\"/docs/\">", 1).into_bytes()
    } else {
        found.bytes.into_owned()
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&found.content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    response
}
