//! Redis, a soft dependency: a process starts and serves without it, and
//! every command is bounded by the configured timeout.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use crate::settings::RedisSettings;

#[derive(Clone)]
pub struct Redis {
    client: Option<redis::Client>,
    settings: RedisSettings,
    conn: std::sync::Arc<OnceCell<ConnectionManager>>,
}

impl Redis {
    pub fn new(settings: &RedisSettings) -> Self {
        let client = match crate::tls::redis_client(settings) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "Redis misconfigured; running without Redis");
                None
            }
        };
        Self {
            client,
            settings: settings.clone(),
            conn: Default::default(),
        }
    }

    /// A connection, made on first use; `None` while Redis is unreachable.
    pub async fn conn(&self) -> Option<ConnectionManager> {
        let client = self.client.clone()?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.settings.connect_timeout))
            .set_response_timeout(Some(self.settings.command_timeout))
            .set_number_of_retries(1);
        self.conn
            .get_or_try_init(|| async move { ConnectionManager::new_with_config(client, config).await })
            .await
            .ok()
            .cloned()
    }

    /// `PING` within the command timeout, for readiness checks.
    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn().await.ok_or_else(|| "unreachable".to_string())?;
        let pong: Result<String, _> =
            tokio::time::timeout(self.settings.command_timeout, redis::cmd("PING").query_async(&mut conn))
                .await
                .map_err(|_| "timeout".to_string())?;
        pong.map(|_| ()).map_err(|e| e.to_string())
    }
}
