//! TLS to the dependencies, always verified. PostgreSQL, Redis and NATS each
//! take a CA file (`<service>.tls_ca_file`) or the system roots; no setting
//! turns verification off, and the connection-string spellings that would
//! (`sslmode=require`, `rediss://…#insecure`) are refused at start.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::settings::{NatsSettings, PostgresSettings, RedisSettings};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "postgres.url: sslmode={0} encrypts without verifying the server; use verify-full (with postgres.tls_ca_file or sslrootcert) or disable"
    )]
    UnverifiedPostgres(String),
    #[error("postgres.url: {0}")]
    PostgresUrl(String),
    #[error("redis.url: TLS without certificate verification (#insecure) is not supported")]
    UnverifiedRedis,
    #[error("{key}: a CA file is given but the URL is not TLS ({scheme})")]
    PlaintextWithCa { key: &'static str, scheme: &'static str },
    #[error("{key}: cannot read CA file {path}: {source}")]
    CaFile {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Connect options for `settings.url` under the verification policy: an
/// explicit `verify-ca`/`verify-full` or `disable` is kept; no `sslmode`
/// means `verify-full` when a CA file is configured and `disable` otherwise
/// (sqlx's own default, `prefer`, would encrypt unverified when it can).
pub fn postgres_options(settings: &PostgresSettings) -> Result<PgConnectOptions, TlsError> {
    let mode = query_param(&settings.url, "sslmode").map(str::to_ascii_lowercase);
    let options = PgConnectOptions::from_str(&settings.url).map_err(|e| TlsError::PostgresUrl(e.to_string()))?;
    let options = match (mode.as_deref(), &settings.tls_ca_file) {
        (Some("allow" | "prefer" | "require"), _) => {
            return Err(TlsError::UnverifiedPostgres(mode.unwrap_or_default()));
        }
        (Some("disable"), Some(_)) => {
            return Err(TlsError::PlaintextWithCa {
                key: "postgres.tls_ca_file",
                scheme: "sslmode=disable",
            });
        }
        (Some("disable"), None) => options.ssl_mode(PgSslMode::Disable),
        (Some("verify-ca" | "verify-full"), ca) | (None, ca @ Some(_)) => {
            let options = if mode.is_none() {
                options.ssl_mode(PgSslMode::VerifyFull)
            } else {
                options
            };
            match ca {
                Some(path) => {
                    readable("postgres.tls_ca_file", path)?;
                    options.ssl_root_cert(path)
                }
                None => options,
            }
        }
        (None, None) => options.ssl_mode(PgSslMode::Disable),
        (Some(other), _) => return Err(TlsError::PostgresUrl(format!("unknown sslmode {other}"))),
    };
    Ok(options)
}

/// The Redis client for `settings.url`: `rediss://` verifies against
/// `redis.tls_ca_file` when given, else against the system roots.
pub fn redis_client(settings: &RedisSettings) -> Result<redis::Client, Box<dyn std::error::Error + Send + Sync>> {
    if settings.url.contains("#insecure") {
        return Err(TlsError::UnverifiedRedis.into());
    }
    let tls = settings.url.starts_with("rediss://");
    match &settings.tls_ca_file {
        None => Ok(redis::Client::open(settings.url.as_str())?),
        Some(_) if !tls => Err(TlsError::PlaintextWithCa {
            key: "redis.tls_ca_file",
            scheme: "redis://",
        }
        .into()),
        Some(path) => {
            let root = std::fs::read(path).map_err(|source| TlsError::CaFile {
                key: "redis.tls_ca_file",
                path: path.clone(),
                source,
            })?;
            let certs = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root),
            };
            Ok(redis::Client::build_with_tls(settings.url.as_str(), certs)?)
        }
    }
}

/// NATS connect options: with `nats.tls_ca_file`, TLS is required and the
/// server verified against that CA; a `tls://` URL requires TLS verified
/// against the system roots.
pub fn nats_options(
    settings: &NatsSettings,
    options: async_nats::ConnectOptions,
) -> Result<async_nats::ConnectOptions, TlsError> {
    match &settings.tls_ca_file {
        Some(path) => {
            readable("nats.tls_ca_file", path)?;
            Ok(options.add_root_certificates(path.clone()).require_tls(true))
        }
        None if settings.url.starts_with("tls://") => Ok(options.require_tls(true)),
        None => Ok(options),
    }
}

fn readable(key: &'static str, path: &Path) -> Result<(), TlsError> {
    std::fs::metadata(path).map(|_| ()).map_err(|source| TlsError::CaFile {
        key,
        path: path.to_path_buf(),
        source,
    })
}

fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(url: &str, ca: Option<&str>) -> Result<PgConnectOptions, TlsError> {
        postgres_options(&PostgresSettings {
            url: url.into(),
            tls_ca_file: ca.map(PathBuf::from),
            ..PostgresSettings::default()
        })
    }

    #[test]
    fn postgres_spellings_that_skip_verification_are_refused() {
        for mode in ["require", "prefer", "allow", "REQUIRE"] {
            let url = format!("postgres://u@db.example/gad?sslmode={mode}");
            assert!(matches!(pg(&url, None), Err(TlsError::UnverifiedPostgres(_))), "{mode}");
        }
        assert!(matches!(
            pg("postgres://u@db/gad?sslmode=disable", Some("/etc/hostname")),
            Err(TlsError::PlaintextWithCa { .. })
        ));
    }

    #[test]
    fn postgres_defaults_never_encrypt_unverified() {
        assert!(matches!(
            pg("postgres://u@db/gad", None).map(|o| o.get_ssl_mode()),
            Ok(PgSslMode::Disable)
        ));
        assert!(matches!(
            pg("postgres://u@db/gad", Some("/etc/hostname")).map(|o| o.get_ssl_mode()),
            Ok(PgSslMode::VerifyFull)
        ));
        assert!(matches!(
            pg("postgres://u@db/gad?sslmode=verify-ca", None).map(|o| o.get_ssl_mode()),
            Ok(PgSslMode::VerifyCa)
        ));
        assert!(matches!(
            pg("postgres://u@db/gad", Some("/nonexistent/ca.pem")),
            Err(TlsError::CaFile { .. })
        ));
    }

    #[test]
    fn redis_without_verification_or_with_a_ca_on_plaintext_is_refused() {
        let redis = |url: &str, ca: Option<&str>| {
            redis_client(&RedisSettings {
                url: url.into(),
                tls_ca_file: ca.map(PathBuf::from),
                ..RedisSettings::default()
            })
        };
        assert!(redis("rediss://127.0.0.1:6380/#insecure", None).is_err());
        assert!(redis("redis://127.0.0.1:6379", Some("/etc/hostname")).is_err());
        assert!(redis("rediss://127.0.0.1:6380", Some("/nonexistent/ca.pem")).is_err());
        assert!(redis("redis://127.0.0.1:6379", None).is_ok());
    }
}
