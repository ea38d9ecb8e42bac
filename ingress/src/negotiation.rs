//! Content negotiation: every endpoint speaks JSON and MessagePack
//! (`application/msgpack`). Handlers see and produce JSON only; this layer
//! translates at the edge, so the two encodings cannot drift apart.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gad_shared::http_error::ApiError;

pub const MSGPACK: &str = "application/msgpack";

/// Bodies are capped before they reach this layer; this bounds the
/// translated copy too.
const MAX_BYTES: usize = crate::routes::MAX_BODY_BYTES;

pub async fn layer(req: Request, next: Next) -> Response {
    let wants_msgpack = accepts_msgpack(req.headers().get(header::ACCEPT));
    let req = if is_msgpack(req.headers().get(header::CONTENT_TYPE)) {
        match msgpack_to_json(req).await {
            Ok(req) => req,
            Err(e) => return e.into_response(),
        }
    } else {
        req
    };
    let response = next.run(req).await;
    if wants_msgpack && is_json(response.headers().get(header::CONTENT_TYPE)) {
        json_to_msgpack(response).await
    } else {
        response
    }
}

fn essence(v: Option<&HeaderValue>) -> Option<String> {
    let v = v?.to_str().ok()?;
    Some(v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

fn is_msgpack(v: Option<&HeaderValue>) -> bool {
    matches!(
        essence(v).as_deref(),
        Some(MSGPACK | "application/x-msgpack" | "application/vnd.msgpack")
    )
}

fn is_json(v: Option<&HeaderValue>) -> bool {
    essence(v).is_some_and(|e| e == "application/json" || e.ends_with("+json"))
}

/// MessagePack when the client lists it before (or without) JSON.
fn accepts_msgpack(v: Option<&HeaderValue>) -> bool {
    let Some(accept) = v.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    for item in accept.split(',') {
        let media = item.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match media.as_str() {
            MSGPACK | "application/x-msgpack" | "application/vnd.msgpack" => return true,
            "application/json" => return false,
            _ => {}
        }
    }
    false
}

async fn msgpack_to_json(req: Request) -> Result<Request, ApiError> {
    let (mut parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_BYTES).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body exceeds 1 MiB",
        )
    })?;
    let value: serde_json::Value = rmp_serde::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("invalid MessagePack: {e}"),
        )
    })?;
    let json = serde_json::to_vec(&value).map_err(ApiError::internal)?;
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Ok(Request::from_parts(parts, Body::from(json)))
}

async fn json_to_msgpack(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return ApiError::internal("response body unreadable").into_response();
    };
    let encoded = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| rmp_serde::to_vec_named(&v).ok());
    match encoded {
        Some(packed) => {
            parts
                .headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(MSGPACK));
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(packed))
        }
        // Not JSON after all: pass it on as it was.
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}
