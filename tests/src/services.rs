//! Where the shared services live. `deploy/services.sh up` writes their URLs
//! to `.local/services.env` (`export K=V` lines); environment variables win,
//! so CI or a developer can point the suite elsewhere.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, bail};

/// URLs of the PostgreSQL, NATS and Redis servers every test shares.
#[derive(Clone)]
pub struct ServiceUrls {
    /// A PostgreSQL URL on the server; its database name is replaced per use.
    pub postgres: String,
    pub nats: String,
    pub redis: String,
    /// RabbitMQ, for the AMQP bridge's tests.
    pub amqp: String,
}

// The URLs may carry passwords.
impl std::fmt::Debug for ServiceUrls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceUrls")
            .field("nats", &self.nats)
            .finish_non_exhaustive()
    }
}

const POSTGRES: &str = "GAD_POSTGRES__URL";
const NATS: &str = "GAD_NATS__URL";
const REDIS: &str = "GAD_REDIS__URL";
const AMQP: &str = "AMQP_URL";
/// Debian's RabbitMQ as installed: guest may log in from loopback.
const AMQP_DEFAULT: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

impl ServiceUrls {
    /// Read once per process.
    pub fn get() -> anyhow::Result<&'static ServiceUrls> {
        static URLS: OnceLock<Result<ServiceUrls, String>> = OnceLock::new();
        URLS.get_or_init(|| Self::load().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    fn load() -> anyhow::Result<ServiceUrls> {
        let file_path = workspace_root().join(".local/services.env");
        let file = match std::fs::read_to_string(&file_path) {
            Ok(text) => parse_env_file(&text),
            Err(_) => HashMap::new(),
        };
        let pick = |key: &str| -> anyhow::Result<String> {
            std::env::var(key)
                .ok()
                .filter(|v| !v.is_empty())
                .or_else(|| file.get(key).cloned())
                .with_context(|| {
                    format!(
                        "{key} is not set and {} does not define it; run `deploy/services.sh up`",
                        file_path.display()
                    )
                })
        };
        Ok(ServiceUrls {
            postgres: pick(POSTGRES)?,
            nats: pick(NATS)?,
            redis: pick(REDIS)?,
            // Env files written before RabbitMQ joined the services lack it.
            amqp: pick(AMQP).unwrap_or_else(|_| AMQP_DEFAULT.to_string()),
        })
    }

    /// Fails with a clear message unless the NATS server is one the topology
    /// can be created on (>= 2.11: per-message TTLs). An older server, e.g.
    /// another project's 2.9 on the default port, would otherwise surface as
    /// an obscure stream-creation error in the middle of a test.
    pub async fn check_nats(&self) -> anyhow::Result<()> {
        let client = tokio::time::timeout(Duration::from_secs(5), async_nats::connect(&self.nats))
            .await
            .with_context(|| {
                format!(
                    "connecting to NATS at {}: timed out; run `deploy/services.sh up`",
                    self.nats
                )
            })?
            .with_context(|| format!("connecting to NATS at {}; run `deploy/services.sh up`", self.nats))?;
        let info = client.server_info();
        let mut parts = info.version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        if (major, minor) < (2, 11) || !info.jetstream {
            bail!(
                "NATS at {} is {} (JetStream: {}); the suite needs >= 2.11 with JetStream (the project's server, see \
                 .local/services.env)",
                self.nats,
                info.version,
                info.jetstream
            );
        }
        Ok(())
    }

    /// The same PostgreSQL server, another database.
    pub fn postgres_db(&self, database: &str) -> String {
        with_database(&self.postgres, database)
    }
}

/// The workspace root: the parent of this crate's directory.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `export K=V` / `K=V` lines; quotes around V are removed.
fn parse_env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            let v = v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

/// Replaces (or adds) the database path of a `postgres://` URL, keeping its query.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{database}?{q}"),
        None => format!("{root}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines_are_parsed() {
        let vars = parse_env_file("# comment\nexport A=postgres://x@h:1/db\nB=\"quoted\"\n\nexport C='single'\n");
        assert_eq!(vars.get("A").map(String::as_str), Some("postgres://x@h:1/db"));
        assert_eq!(vars.get("B").map(String::as_str), Some("quoted"));
        assert_eq!(vars.get("C").map(String::as_str), Some("single"));
    }

    #[test]
    fn database_is_replaced_and_query_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/gad", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/gad?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:5432", "x"), "postgres://h:5432/x");
    }
}
