//! Timestamps in JSON are RFC 3339 UTC with `Z` and milliseconds (§ conventions).

use chrono::{DateTime, SecondsFormat, Utc};

pub fn format(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `#[serde(with = "gad_shared::time::millis")]`.
pub mod millis {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        DateTime::<Utc>::deserialize(d)
    }
}

/// `#[serde(with = "gad_shared::time::option_millis")]`.
pub mod option_millis {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format(t)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<DateTime<Utc>>::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn millisecond_precision_with_z() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-28T10:00:00.123456+00:00").map(|t| t.to_utc());
        assert_eq!(
            t.map(|t| super::format(&t)).ok().as_deref(),
            Some("2026-11-28T10:00:00.123Z")
        );
    }
}
