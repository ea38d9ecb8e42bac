//! TLS to the dependencies, always verified. PostgreSQL, Redis and NATS each
//! take a CA file (`<service>.tls_ca_file`), trusted beside the client's
//! built-in roots (PostgreSQL's are the bundled Mozilla list, not the
//! system's); no setting
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
/// means `verify-full` when a CA (file or `sslrootcert`) is configured and
/// `disable` otherwise (sqlx's own default, `prefer`, would encrypt
/// unverified when it can). The mode is read back from what sqlx parsed, not
/// from the URL's text: sqlx takes the last of repeated parameters, its
/// aliases (`ssl-mode`) and `PGSSLMODE`, and any of them could otherwise
/// slip an unverified mode past a check of the first `sslmode`.
pub fn postgres_options(settings: &PostgresSettings) -> Result<PgConnectOptions, TlsError> {
    let options = PgConnectOptions::from_str(&settings.url).map_err(|e| TlsError::PostgresUrl(e.to_string()))?;
    let has_param = |names: &[&str]| query_params(&settings.url).any(|(k, _)| names.contains(&k));
    let chosen = has_param(&["sslmode", "ssl-mode"]) || std::env::var_os("PGSSLMODE").is_some();
    let root_in_url = has_param(&["sslrootcert", "ssl-root-cert", "ssl-ca"]);
    let ca = settings.tls_ca_file.as_ref();
    let options = match options.get_ssl_mode() {
        m @ (PgSslMode::Allow | PgSslMode::Require) => return Err(TlsError::UnverifiedPostgres(name(m).into())),
        m @ PgSslMode::Prefer if chosen => return Err(TlsError::UnverifiedPostgres(name(m).into())),
        PgSslMode::Prefer if ca.is_some() || root_in_url => options.ssl_mode(PgSslMode::VerifyFull),
        PgSslMode::Prefer => options.ssl_mode(PgSslMode::Disable),
        PgSslMode::Disable if ca.is_some() || root_in_url => {
            return Err(TlsError::PlaintextWithCa {
                key: "postgres.tls_ca_file",
                scheme: "sslmode=disable",
            });
        }
        PgSslMode::Disable | PgSslMode::VerifyCa | PgSslMode::VerifyFull => options,
    };
    match ca {
        Some(path) => {
            readable("postgres.tls_ca_file", path)?;
            Ok(options.ssl_root_cert(path))
        }
        None => Ok(options),
    }
}

fn name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
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
        None if crate::topology::server_urls(&settings.url)
            .iter()
            .any(|u| u.starts_with("tls://")) =>
        {
            Ok(options.require_tls(true))
        }
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

fn query_params(url: &str) -> impl Iterator<Item = (&str, &str)> {
    url.split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
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
        // sqlx takes the last of repeated parameters and knows an alias.
        for url in [
            "postgres://u@db/gad?sslmode=verify-full&sslmode=require",
            "postgres://u@db/gad?sslmode=verify-full&ssl-mode=require",
            "postgres://u@db/gad?ssl-mode=prefer",
        ] {
            assert!(matches!(pg(url, None), Err(TlsError::UnverifiedPostgres(_))), "{url}");
        }
    }

    #[test]
    fn a_root_certificate_in_the_url_means_verify_full_not_plaintext() {
        assert!(matches!(
            pg("postgres://u@db/gad?sslrootcert=/etc/hostname", None).map(|o| o.get_ssl_mode()),
            Ok(PgSslMode::VerifyFull)
        ));
        assert!(matches!(
            pg("postgres://u@db/gad?sslrootcert=/etc/hostname&sslmode=disable", None),
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
