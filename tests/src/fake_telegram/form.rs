//! Request bodies as the Bot API takes them: JSON, or `multipart/form-data`
//! (teloxide sends the methods that may carry a file that way, `setWebhook`
//! among them). Both become one JSON object of the call's parameters.

use serde_json::{Map, Value};

/// The parameters of a call, `{}` when there are none or they cannot be read.
pub fn parameters(content_type: Option<&str>, body: &[u8]) -> Value {
    let boundary = content_type
        .filter(|t| t.starts_with("multipart/form-data"))
        .and_then(|t| t.split(';').find_map(|p| p.trim().strip_prefix("boundary=")))
        .map(|b| b.trim_matches('"').to_string());
    match boundary {
        Some(b) => multipart(&String::from_utf8_lossy(body), &b),
        None => serde_json::from_slice(body).unwrap_or_else(|_| Value::Object(Map::new())),
    }
}

/// Text fields only (a fake has no use for uploaded files); a value that is
/// JSON (arrays, objects, numbers) is kept as JSON.
fn multipart(body: &str, boundary: &str) -> Value {
    let mut fields = Map::new();
    for part in body.split(&format!("--{boundary}")) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let name = head
            .split(';')
            .find_map(|p| p.trim().strip_prefix("name="))
            .map(|n| n.lines().next().unwrap_or_default().trim_matches('"').to_string());
        let Some(name) = name else {
            continue;
        };
        let value = value.strip_suffix("\r\n").unwrap_or(value);
        let parsed = match serde_json::from_str::<Value>(value) {
            Ok(v) if !v.is_string() => v,
            _ => Value::String(value.to_string()),
        };
        fields.insert(name, parsed);
    }
    Value::Object(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_fields_of_a_multipart_body() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"url\"\r\n\r\nhttp://h/x\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"allowed_updates\"\r\n\r\n[\"message\"]\r\n--XyZ--\r\n";
        let v = parameters(Some("multipart/form-data; boundary=XyZ"), body.as_bytes());
        assert_eq!(v["url"], "http://h/x");
        assert_eq!(v["allowed_updates"][0], "message");
    }
}
