//! NATS-style headers (the envelope's `Content-Type`, `traceparent`, …) as
//! AMQP header tables and back: one header type for both brokers' deliveries.

use async_nats::HeaderMap;
use lapin::types::{AMQPValue, FieldTable};

pub fn to_field_table(headers: &HeaderMap) -> FieldTable {
    let mut table = FieldTable::default();
    for (name, values) in headers.iter() {
        if let Some(v) = values.first() {
            let name: &str = name.as_ref();
            table.insert(name.into(), AMQPValue::LongString(v.as_str().into()));
        }
    }
    table
}

/// Text and integer values; the broker's own `x-` tables (`x-death`) are left out.
pub fn to_header_map(table: Option<&FieldTable>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in table.iter().flat_map(|t| t.inner().iter()) {
        let text = match value {
            AMQPValue::LongString(s) => s.to_string(),
            AMQPValue::ShortString(s) => s.as_str().to_string(),
            AMQPValue::LongLongInt(n) => n.to_string(),
            AMQPValue::LongInt(n) => n.to_string(),
            AMQPValue::LongUInt(n) => n.to_string(),
            AMQPValue::ShortInt(n) => n.to_string(),
            AMQPValue::ShortUInt(n) => n.to_string(),
            _ => continue,
        };
        headers.insert(name.as_str(), text.as_str());
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_headers_survive_the_round_trip() {
        let mut h = HeaderMap::new();
        h.insert("Content-Type", "application/msgpack");
        h.insert("traceparent", "00-abc-def-01");
        let back = to_header_map(Some(&to_field_table(&h)));
        assert_eq!(
            back.get("Content-Type").map(|v| v.as_str()),
            Some("application/msgpack")
        );
        assert_eq!(back.get("traceparent").map(|v| v.as_str()), Some("00-abc-def-01"));
    }
}
