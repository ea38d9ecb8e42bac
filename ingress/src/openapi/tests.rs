use serde_json::Value;

use super::document;

fn doc() -> Value {
    serde_json::to_value(document()).unwrap_or_default()
}

/// Every endpoint of domain.md §6.3 that ingress serves.
const ENDPOINTS: &[(&str, &str)] = &[
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/logout"),
    ("post", "/api/v1/auth/refresh"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users/{id}"),
    ("put", "/api/v1/users/{id}"),
    ("delete", "/api/v1/users/{id}"),
    ("put", "/api/v1/users/me/preferences"),
    ("post", "/api/v1/users/{id}/unlock"),
    ("get", "/api/v1/usuarios"),
    ("delete", "/api/v1/usuarios/{id}"),
    ("get", "/api/v1/efectivos"),
    ("post", "/api/v1/efectivos"),
    ("get", "/api/v1/efectivos/me"),
    ("get", "/api/v1/efectivos/{id}"),
    ("put", "/api/v1/efectivos/{id}"),
    ("delete", "/api/v1/efectivos/{id}"),
    ("put", "/api/v1/efectivos/{id}/location"),
    ("put", "/api/v1/efectivos/{id}/disponibilidad"),
    ("get", "/api/v1/tasks"),
    ("post", "/api/v1/tasks"),
    ("get", "/api/v1/tasks/{id}"),
    ("put", "/api/v1/tasks/{id}"),
    ("patch", "/api/v1/tasks/{id}"),
    ("delete", "/api/v1/tasks/{id}"),
    ("post", "/api/v1/tasks/{id}/{accion}"),
    ("post", "/api/v1/tasks/{id}/assign"),
    ("post", "/api/v1/tasks/{id}/unassign"),
    ("post", "/api/v1/tasks/{id}/respond"),
    ("get", "/api/v1/tasks/{id}/history"),
    ("post", "/api/v1/tasks/emergency"),
    ("get", "/api/v1/geo/map/view"),
    ("get", "/api/v1/geo/nearest"),
    ("get", "/api/v1/stats/user/{id}"),
    ("post", "/api/v1/stats/invalidate/user/{id}"),
    ("post", "/api/v1/telegram/link-code"),
    ("delete", "/api/v1/telegram/link"),
    ("delete", "/api/v1/telegram/link/{usuario_id}"),
    ("post", "/api/v1/telegram/webhook"),
    ("get", "/api/v1/jobs/{id}"),
    ("get", "/api/v1/jobs"),
    ("post", "/api/v1/jobs/{id}/cancel"),
    ("get", "/api/v1/notifications"),
    ("post", "/api/v1/notifications/{id}/ack"),
    ("get", "/api/v1/admin/audit"),
    ("get", "/api/v1/admin/ops"),
    ("get", "/api/v1/admin/dlq"),
    ("post", "/api/v1/admin/dlq/{id}/replay"),
    ("post", "/api/v1/admin/dlq/{id}/discard"),
    ("get", "/health"),
    ("get", "/health/ready"),
    ("get", "/api/v1/telegram/{area}/{rest}"),
];

#[test]
fn every_endpoint_is_documented_in_openapi_3_1() {
    let doc = doc();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")));
    for (method, path) in ENDPOINTS {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} is missing");
    }
}

#[test]
fn operation_ids_are_unique() {
    let doc = doc();
    let mut ids = Vec::new();
    for item in doc["paths"].as_object().into_iter().flat_map(|p| p.values()) {
        for op in item.as_object().into_iter().flat_map(|o| o.values()) {
            ids.extend(op["operationId"].as_str().map(str::to_string));
        }
    }
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count);
}

#[test]
fn errors_headers_and_security_follow_sections_6_and_7() {
    let doc = doc();
    let nearest = &doc["paths"]["/api/v1/geo/nearest"]["get"];
    let accepted = &nearest["responses"]["202"];
    for h in [
        "Location",
        "X-Job-Id",
        "Preference-Applied",
        "X-Request-Id",
        "X-RateLimit-Limit",
    ] {
        assert!(accepted["headers"][h].is_object(), "202 lacks {h}");
    }
    assert!(nearest["responses"]["429"]["headers"]["Retry-After"].is_object());
    assert!(nearest["responses"]["401"]["headers"]["WWW-Authenticate"].is_object());
    let params: Vec<&str> = nearest["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for p in [
        "lat",
        "lng",
        "k",
        "radius_m",
        "Prefer",
        "Idempotency-Key",
        "X-Request-Id",
    ] {
        assert!(params.contains(&p), "nearest lacks parameter {p}");
    }
    assert_eq!(
        nearest["responses"]["404"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Error404"
    );
    let codes = &doc["components"]["schemas"]["Error409"]["properties"]["error"]["enum"];
    assert!(
        codes
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c == "idempotency_key_reused"))
    );
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert_eq!(
        doc["paths"]["/api/v1/auth/login"]["post"]["security"],
        serde_json::json!([])
    );
}
