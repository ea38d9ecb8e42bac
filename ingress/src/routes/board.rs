//! The live operations board (`/board`): a static page compiled into the
//! binary, so it is served with no CDN and no files beside the binary. The
//! page calls this API and the broadcaster's `/ws/connect`, whose address
//! comes from configuration (`ingress.board.ws_url`) through
//! `/board/config.json`.
//!
//! Ingress trims trailing slashes before routing, so the page is `/board`
//! itself with a `<base href="/board/">` (as `/docs` does).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use gad_shared::http_error::ApiError;
use serde::Deserialize;
use serde_json::json;

use crate::state::AppState;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BoardSettings {
    /// `false` leaves `/board` out (an API-only deployment).
    pub enabled: bool,
    /// Where browsers open the live feed: `ws://` or `wss://` with a host, or
    /// a path (`/ws/connect`) when a proxy serves the broadcaster beside ingress.
    pub ws_url: String,
}

impl Default for BoardSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            ws_url: "ws://127.0.0.1:8090/ws/connect".into(),
        }
    }
}

impl BoardSettings {
    /// The `connect-src` the page needs beyond its own origin; an error names
    /// a `ws_url` a browser could not open.
    pub fn ws_origin(&self) -> Result<Option<&str>, String> {
        let url = self.ws_url.as_str();
        if url.starts_with('/') && !url.starts_with("//") {
            return Ok(None);
        }
        let rest = url
            .strip_prefix("wss://")
            .or_else(|| url.strip_prefix("ws://"))
            .ok_or_else(|| format!("ingress.board.ws_url must start with ws://, wss:// or /, got {url:?}"))?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let clean = |c: char| c.is_ascii_alphanumeric() || ".-:[]_".contains(c);
        if authority.is_empty() || !authority.chars().all(clean) {
            return Err(format!("ingress.board.ws_url has no usable host: {url:?}"));
        }
        Ok(Some(&url[..url.len() - rest.len() + authority.len()]))
    }
}

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_str!(concat!("../../board/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("board.css", "text/css; charset=utf-8"),
    asset!("js/main.js", JS),
    asset!("js/api.js", JS),
    asset!("js/live.js", JS),
    asset!("js/map.js", JS),
    asset!("js/city.js", JS),
    asset!("js/tasks.js", JS),
    asset!("js/dispatch.js", JS),
    asset!("js/alerts.js", JS),
    asset!("js/ops.js", JS),
    asset!("js/dom.js", JS),
];

pub fn router(settings: &BoardSettings) -> Router<AppState> {
    if !settings.enabled {
        return Router::new();
    }
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/board") }))
        .route("/board", get(index))
        .route("/board/config.json", get(config))
        .route("/board/{*file}", get(asset))
}

async fn index(State(state): State<AppState>) -> Response {
    file(&state, "index.html")
}

async fn asset(State(state): State<AppState>, Path(path): Path<String>) -> Response {
    file(&state, &path)
}

/// What the page cannot know by itself: where the live feed is.
async fn config(State(state): State<AppState>) -> Response {
    let board = &state.settings.ingress.board;
    let mut response = axum::Json(json!({ "ws_url": board.ws_url })).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn file(state: &AppState, path: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return ApiError::not_found("file").into_response();
    };
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    // Revalidated on every load: a deploy must not leave a stale script
    // talking to a changed API.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(csp) = HeaderValue::from_str(&policy(&state.settings.ingress.board)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// The API's own policy forbids everything a page needs; this one lets the
/// page run its own scripts and open the configured feed, nothing else.
fn policy(board: &BoardSettings) -> String {
    let feed = board.ws_origin().ok().flatten().unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self' {feed}; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(url: &str) -> Result<Option<String>, String> {
        let board = BoardSettings {
            enabled: true,
            ws_url: url.into(),
        };
        board.ws_origin().map(|o| o.map(str::to_owned))
    }

    #[test]
    fn the_feed_origin_is_scheme_and_authority() {
        assert_eq!(
            origin("wss://gad.example.org/ws/connect"),
            Ok(Some("wss://gad.example.org".into()))
        );
        assert_eq!(
            origin("ws://127.0.0.1:8090/ws/connect"),
            Ok(Some("ws://127.0.0.1:8090".into()))
        );
        assert_eq!(origin("/ws/connect"), Ok(None));
    }

    #[test]
    fn a_url_a_browser_cannot_open_is_refused() {
        assert!(origin("http://gad.example.org/ws").is_err());
        assert!(origin("//gad.example.org/ws").is_err());
        assert!(origin("ws:///ws/connect").is_err());
        assert!(origin("ws://evil.org; script-src *").is_err());
    }

    #[test]
    fn every_file_the_page_loads_is_served() {
        let served = |path: &str| ASSETS.iter().any(|a| a.path == path);
        let index = ASSETS
            .iter()
            .find(|a| a.path == "index.html")
            .map(|a| a.body)
            .unwrap_or_default();
        for link in ["board.css", "js/main.js"] {
            assert!(index.contains(link), "index.html does not load {link}");
        }
        // Each `from './x.js'` of a module names a file served beside it.
        let mut imports = 0;
        for module in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            for (_, rest) in module
                .body
                .match_indices(" from '")
                .map(|(i, _)| module.body.split_at(i + 7))
            {
                let import = rest.split('\'').next().unwrap_or_default();
                let path = format!("js/{}", import.trim_start_matches("./"));
                assert!(served(&path), "{} imports {import}, which is not served", module.path);
                imports += 1;
            }
        }
        assert!(
            imports >= ASSETS.len() - 3,
            "only {imports} imports found: is the pattern stale?"
        );
        for asset in ASSETS {
            assert!(!asset.body.trim().is_empty(), "{} is empty", asset.path);
        }
    }
}
