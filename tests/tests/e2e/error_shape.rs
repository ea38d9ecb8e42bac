//! The §7 error body every 4xx and 5xx carries.

use gad_e2e::ApiResponse;
use reqwest::StatusCode;

/// Asserts `status`, the JSON error `code`, a message, and a `request_id`
/// equal to the `X-Request-Id` response header.
pub fn assert_error(r: &ApiResponse, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "unexpected status; body: {}", r.text);
    assert_eq!(r.body["error"], code, "unexpected error code; body: {}", r.text);
    assert!(
        r.body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message: {}",
        r.text
    );
    let header = r.header("x-request-id");
    assert!(header.is_some_and(|h| !h.is_empty()), "no X-Request-Id header");
    assert_eq!(
        r.body["request_id"].as_str(),
        header,
        "request_id differs from X-Request-Id: {}",
        r.text
    );
}
