//! Reading `GAD_DLQ` without a consumer: message by message from a sequence,
//! by subject filter. The stream is small (capped, operators empty it), and
//! a consumer would leave server state behind for every list request.

use std::future::Future;

use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use futures::StreamExt;

use super::{DlqError, DlqOps, header};

pub struct Reader {
    stream: Stream<()>,
    timeout: std::time::Duration,
}

impl Reader {
    pub async fn new(ops: &DlqOps) -> Result<Self, DlqError> {
        let stream = bounded(ops.timeout, ops.js.get_stream_no_info(ops.topology.dlq_stream())).await?;
        Ok(Self {
            stream,
            timeout: ops.timeout,
        })
    }

    /// Records matching `filter`.
    pub async fn count(&self, filter: &str) -> Result<u64, DlqError> {
        let mut subjects = bounded(self.timeout, self.stream.info_with_subjects(filter)).await?;
        let mut total = 0u64;
        while let Some(next) = tokio::time::timeout(self.timeout, subjects.next())
            .await
            .map_err(|_| DlqError::Timeout(self.timeout))?
        {
            total += next.map_err(DlqError::nats)?.1 as u64;
        }
        Ok(total)
    }

    /// The first record at or after `seq` matching `filter`.
    pub async fn next(&self, filter: &str, seq: u64) -> Result<Option<StreamMessage>, DlqError> {
        let got = tokio::time::timeout(self.timeout, self.stream.get_first_raw_message_by_subject(filter, seq))
            .await
            .map_err(|_| DlqError::Timeout(self.timeout))?;
        match got {
            Ok(m) => Ok(Some(m)),
            Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => Ok(None),
            Err(e) => Err(DlqError::nats(e)),
        }
    }

    /// Records `skip..skip + limit` of `filter`, in stream order.
    pub async fn page(&self, filter: &str, skip: u64, limit: u64) -> Result<Vec<StreamMessage>, DlqError> {
        let mut out = Vec::new();
        let mut seq = 1;
        let mut seen = 0u64;
        while (out.len() as u64) < limit {
            let Some(m) = self.next(filter, seq).await? else { break };
            seq = m.sequence + 1;
            if seen >= skip {
                out.push(m);
            }
            seen += 1;
        }
        Ok(out)
    }

    /// Every record of one job (a replayed job that died again has several).
    pub async fn of_job(&self, filter: &str, job_id: &str) -> Result<Vec<StreamMessage>, DlqError> {
        let mut out = Vec::new();
        let mut seq = 1;
        while let Some(m) = self.next(filter, seq).await? {
            seq = m.sequence + 1;
            if m.headers.get(header::JOB_ID).is_some_and(|v| v.as_str() == job_id) {
                out.push(m);
            }
        }
        Ok(out)
    }

    pub async fn by_sequence(&self, seq: u64) -> Result<Option<StreamMessage>, DlqError> {
        let got = tokio::time::timeout(self.timeout, self.stream.get_raw_message(seq))
            .await
            .map_err(|_| DlqError::Timeout(self.timeout))?;
        match got {
            Ok(m) => Ok(Some(m)),
            Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => Ok(None),
            Err(e) => Err(DlqError::nats(e)),
        }
    }

    /// Removes handled records. A failure leaves a stale record in the list,
    /// which a second action then refuses (`NotDead`): logged, not fatal.
    pub async fn remove(&self, sequences: Vec<u64>) {
        for seq in sequences {
            let deleted = tokio::time::timeout(self.timeout, self.stream.delete_message(seq)).await;
            match deleted {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(seq, error = %e, "dead-letter record not removed"),
                Err(_) => tracing::warn!(seq, "dead-letter record not removed: timeout"),
            }
        }
    }
}

async fn bounded<T, E: std::fmt::Display>(
    limit: std::time::Duration,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, DlqError> {
    tokio::time::timeout(limit, call)
        .await
        .map_err(|_| DlqError::Timeout(limit))?
        .map_err(DlqError::nats)
}
