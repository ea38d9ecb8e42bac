//! Looking behind the API: what the test's jobs stream and `jobs` table hold,
//! to check that a refused request left no job anywhere.

use anyhow::Context;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::{GetStreamError, GetStreamErrorKind};

use crate::app::TestApp;

impl TestApp {
    /// Messages in this test's `GAD_JOBS` stream; `None` when the stream does
    /// not exist (nothing ever created it).
    pub async fn jobs_stream_messages(&self) -> anyhow::Result<Option<u64>> {
        self.stream_messages(&self.topology.jobs_stream()).await
    }

    /// Rows in this test's `jobs` table.
    pub async fn jobs_rows(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM jobs")
            .fetch_one(&self.db)
            .await?)
    }

    /// Keys in this test's job-status bucket; `None` when it does not exist.
    pub async fn job_status_keys(&self) -> anyhow::Result<Option<u64>> {
        // A key-value bucket is the stream `KV_<bucket>`.
        self.stream_messages(&format!("KV_{}", self.topology.job_status_bucket()))
            .await
    }

    async fn stream_messages(&self, name: &str) -> anyhow::Result<Option<u64>> {
        match self.js.get_stream(name).await {
            Ok(mut stream) => Ok(Some(
                stream
                    .info()
                    .await
                    .with_context(|| format!("info of {name}"))?
                    .state
                    .messages,
            )),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("looking up {name}")),
        }
    }
}

fn is_not_found(e: &GetStreamError) -> bool {
    matches!(e.kind(), GetStreamErrorKind::JetStream(inner) if inner.error_code() == ErrorCode::STREAM_NOT_FOUND)
}
