//! What every operation shares, added once instead of in each annotation:
//! the §7 error responses the edge can produce, the headers of §6, the
//! request headers of queued endpoints, unique operation ids and the
//! `/api/v1/usuarios` alias.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Required};

use super::errors;
use crate::negotiation::MSGPACK;

/// Served without a token.
const PUBLIC: [&str; 5] = [
    "/health",
    "/health/ready",
    "/api/v1/auth/login",
    "/api/v1/telegram/{area}/{rest}",
    "/api/v1/telegram/webhook",
];

/// Exempt from rate limits (§6.4).
fn rate_limited(path: &str) -> bool {
    !path.starts_with("/health") && path != "/api/v1/telegram/webhook"
}

pub fn apply(doc: &mut OpenApi) {
    alias_usuarios(doc);
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in operations(item) {
            op.operation_id = Some(operation_id(method, path));
            if PUBLIC.contains(&path.as_str()) {
                op.security = Some(Vec::new());
            }
            let public = op.security.as_ref().is_some_and(Vec::is_empty);
            refine(op, path, public);
        }
    }
    let components = doc.components.get_or_insert_with(Default::default);
    for (status, codes, _) in errors::CODES {
        components
            .schemas
            .insert(errors::schema_name(*status), errors::schema(*status, codes));
    }
}

fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("patch", item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
    .collect()
}

/// `get_api_v1_users_id`: unique by construction, stable across releases.
fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<&str> = path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    format!("{method}_{}", words.join("_"))
}

/// `/api/v1/usuarios[/…]` answers exactly as `/api/v1/users[/…]` (§6.3).
fn alias_usuarios(doc: &mut OpenApi) {
    let aliases: Vec<(String, PathItem)> = doc
        .paths
        .paths
        .iter()
        .filter_map(|(path, item)| {
            let rest = path.strip_prefix("/api/v1/users")?;
            let mut item = item.clone();
            for (_, op) in operations(&mut item) {
                op.summary = Some(format!("Alias of /api/v1/users{rest}"));
            }
            Some((format!("/api/v1/usuarios{rest}"), item))
        })
        .collect();
    doc.paths.paths.extend(aliases);
}

fn refine(op: &mut Operation, path: &str, public: bool) {
    let queued = op.responses.responses.contains_key("202");
    let has_body = op.request_body.is_some();
    let params = op.parameters.get_or_insert_with(Vec::new);
    let has_path_params = params.iter().any(|p| p.parameter_in == ParameterIn::Path);
    let has_query = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
    params.push(header_param(
        "X-Request-Id",
        "Echoed on the response; one is made when absent",
        "^[!-~]{1,64}$",
    ));
    if queued {
        params.push(header_param(
            "Prefer",
            "`wait=N` (seconds, capped at 30) waits for the outcome; `respond-async` forces 202",
            "^(respond-async|wait=([0-9]|[12][0-9]|30))$",
        ));
        params.push(header_param(
            "Idempotency-Key",
            "The same key from the same usuario within 24 h returns the original job; with another body, \
             409 `idempotency_key_reused`",
            "^[!-~]{1,128}$",
        ));
    }

    let mut statuses = vec![500, 503];
    if rate_limited(path) {
        statuses.push(429);
    }
    if !public {
        statuses.extend([401, 403]);
    }
    if has_path_params || queued {
        statuses.push(404);
    }
    if has_body {
        statuses.extend([400, 413, 415, 422]);
    }
    if has_query || queued {
        statuses.push(422);
    }
    if queued {
        statuses.push(409);
    }
    for status in statuses {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(ResponseBuilder::new().description(errors::description(status)).build()));
    }

    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        let Ok(status) = status.parse::<u16>() else { continue };
        describe(response, status, path, queued);
    }
}

fn describe(response: &mut Response, status: u16, path: &str, queued: bool) {
    if status >= 400 && response.content.is_empty() {
        let schema = Ref::from_schema_name(errors::schema_name(status));
        response
            .content
            .insert("application/json".into(), Content::new(Some(schema)));
    }
    // The negotiation layer answers the same body in MessagePack on request.
    if let Some(json) = response.content.get("application/json").cloned() {
        response.content.insert(MSGPACK.into(), json);
    }
    let headers = &mut response.headers;
    headers.insert(
        "X-Request-Id".into(),
        header(Type::String, "The request's id, echoed or made"),
    );
    if rate_limited(path) {
        headers.insert("X-RateLimit-Limit".into(), header(Type::Integer, "Requests per minute"));
        headers.insert(
            "X-RateLimit-Remaining".into(),
            header(Type::Integer, "Left in the window"),
        );
        headers.insert(
            "X-RateLimit-Reset".into(),
            header(Type::Integer, "Seconds until the window is full again"),
        );
    }
    match status {
        401 => {
            headers.insert("WWW-Authenticate".into(), header(Type::String, "`Bearer`"));
        }
        429 | 503 => {
            headers.insert("Retry-After".into(), header(Type::Integer, "Seconds to wait"));
        }
        _ => {}
    }
    if queued && (200..300).contains(&status) {
        headers.insert("X-Job-Id".into(), header(Type::String, "The job behind this answer"));
        headers.insert(
            "Preference-Applied".into(),
            header(Type::String, "`wait=N` when the request waited"),
        );
    }
    if queued && (status == 201 || status == 202) {
        headers.insert(
            "Location".into(),
            header(Type::String, "201: the created resource; 202: the job's status URL"),
        );
    }
}

fn header(kind: Type, description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(kind))
        .description(Some(description))
        .build()
}

fn header_param(name: &str, description: &str, pattern: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(
            ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)),
        ))
        .build()
}
