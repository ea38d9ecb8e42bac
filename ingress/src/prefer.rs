//! The `Prefer` request header (RFC 7240): `wait=N` and `respond-async`.

use std::time::Duration;

use axum::http::HeaderMap;
use gad_shared::error_body::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prefer {
    /// Seconds to wait for the outcome, already capped; `None` = answer 202.
    pub wait: Option<u64>,
}

impl Prefer {
    /// `legacy_wait` is the default wait of endpoints kept from the original
    /// system (QW); `respond-async` always wins and forces 202.
    pub fn parse(headers: &HeaderMap, max_wait: Duration, legacy_wait: Option<u64>) -> Result<Self, FieldError> {
        let mut wait = legacy_wait;
        for value in headers.get_all("prefer") {
            let Ok(value) = value.to_str() else { continue };
            for pref in value.split([',', ';']).map(str::trim) {
                if pref.eq_ignore_ascii_case("respond-async") {
                    return Ok(Prefer { wait: None });
                }
                if let Some(n) = pref.strip_prefix("wait=") {
                    let n: u64 = n.trim().parse().map_err(|_| {
                        FieldError::new(
                            "Prefer",
                            "invalid_number",
                            "wait must be a whole number of seconds (0-30)",
                        )
                    })?;
                    wait = Some(n.min(max_wait.as_secs()));
                }
            }
        }
        Ok(Prefer {
            wait: wait.filter(|w| *w > 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Result<Prefer, FieldError> {
        let mut h = HeaderMap::new();
        h.insert("prefer", v.parse().unwrap_or(axum::http::HeaderValue::from_static("")));
        Prefer::parse(&h, Duration::from_secs(30), None)
    }

    #[test]
    fn wait_is_parsed_and_capped_and_respond_async_wins() {
        assert_eq!(parse("wait=5").ok(), Some(Prefer { wait: Some(5) }));
        assert_eq!(parse("wait=120").ok(), Some(Prefer { wait: Some(30) }));
        assert_eq!(parse("respond-async, wait=5").ok(), Some(Prefer { wait: None }));
        assert_eq!(parse("wait=0").ok(), Some(Prefer { wait: None }));
        assert!(parse("wait=soon").is_err());
        assert_eq!(
            Prefer::parse(&HeaderMap::new(), Duration::from_secs(30), Some(5)).ok(),
            Some(Prefer { wait: Some(5) })
        );
    }
}
