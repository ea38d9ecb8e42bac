//! `resume {topic, last_seq}` (§8): the events of a topic after the client's
//! cursor, in order, from this node's history, and from `GAD_EVENTS` for
//! the part the history no longer (or never) held; then the topic is live.
//!
//! A topic the connection already gets live (its own `user.{id}`) is
//! replayed only up to where live delivery began. Events the connection got
//! through another of its topics are not sent again.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;

use crate::feed;
use crate::hub::{ConnHandle, ConnId, ReplayStep};
use crate::state::AppState;

/// Frames taken from the history per step (the hub's lock is held for one step).
const STEP: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// Part of the gap is older than the stream keeps: the client reloads.
    #[error("events after {0} are no longer retained")]
    Resync(u64),
    /// The client did not take the replay in time, or it did not catch up.
    #[error("the client did not keep up with the replay")]
    SlowConsumer,
    /// The stream could not be read in time: the client retries later.
    #[error("reading GAD_EVENTS: {0}")]
    Stream(String),
}

/// Replays `topic` after `last_seq` to connection `id`; returns the node's
/// head once the topic is live.
pub async fn resume(
    state: &AppState,
    id: ConnId,
    handle: &ConnHandle,
    topic: &str,
    last_seq: u64,
) -> Result<u64, ResumeError> {
    let cfg = &state.settings.broadcaster;
    let live_after = state.hub.subscribed_after(id, topic);
    let catch_up = async {
        let mut cursor = last_seq;
        loop {
            match state.hub.replay_step(id, topic, last_seq, cursor, live_after, STEP) {
                ReplayStep::Done { head } => return Ok(head),
                ReplayStep::Frames { frames, cursor: next } => {
                    for frame in frames {
                        offer(handle, frame, cfg.write_deadline).await?;
                    }
                    cursor = next;
                }
                ReplayStep::Missing { upto } => {
                    cursor = from_stream(state, id, handle, topic, cursor, upto).await?;
                }
            }
        }
    };
    let outcome = tokio::time::timeout(cfg.resume_timeout, catch_up)
        .await
        .unwrap_or(Err(ResumeError::SlowConsumer));
    let label = match &outcome {
        Ok(_) => "ok",
        Err(ResumeError::Resync(_)) => "resync",
        Err(ResumeError::SlowConsumer) => "slow_consumer",
        Err(ResumeError::Stream(_)) => "stream_error",
    };
    metrics::counter!(gad_shared::metric_names::WS_RESUME, "outcome" => label).increment(1);
    outcome
}

async fn offer(
    handle: &ConnHandle,
    frame: axum::extract::ws::Utf8Bytes,
    deadline: Duration,
) -> Result<(), ResumeError> {
    handle
        .offer_replay(frame, deadline)
        .await
        .map_err(|_| ResumeError::SlowConsumer)
}

/// Sends the events of `topic` with `after < seq <= upto` read from
/// `GAD_EVENTS`; returns the new cursor (`upto`, or the stream's end if lower).
async fn from_stream(
    state: &AppState,
    id: ConnId,
    handle: &ConnHandle,
    topic: &str,
    after: u64,
    upto: u64,
) -> Result<u64, ResumeError> {
    let cfg = &state.settings.broadcaster;
    let wait = cfg.resume_read_timeout;
    let stream_error = |e: String| ResumeError::Stream(e);
    let mut stream = tokio::time::timeout(wait, state.js.get_stream(state.topology.events_stream()))
        .await
        .map_err(|_| stream_error("stream lookup timed out".into()))?
        .map_err(|e| stream_error(e.to_string()))?;
    let info = tokio::time::timeout(wait, stream.info())
        .await
        .map_err(|_| stream_error("stream info timed out".into()))?
        .map_err(|e| stream_error(e.to_string()))?;
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    if after + 1 < first {
        // Messages between the cursor and the stream's start are gone:
        // some may have belonged to this topic.
        return Err(ResumeError::Resync(after));
    }
    let upto = upto.min(last);
    if after >= upto {
        return Ok(upto.max(after));
    }
    // Delivered live through another topic: not sent again.
    let other = state.hub.subscriptions(id);
    let consumer = tokio::time::timeout(
        wait,
        stream.create_consumer(pull::OrderedConfig {
            filter_subject: state.topology.events_filter(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            },
            ..Default::default()
        }),
    )
    .await
    .map_err(|_| stream_error("creating a consumer timed out".into()))?
    .map_err(|e| stream_error(e.to_string()))?;
    let mut messages = tokio::time::timeout(wait, consumer.messages())
        .await
        .map_err(|_| stream_error("consumer timed out".into()))?
        .map_err(|e| stream_error(e.to_string()))?;
    loop {
        let msg = match tokio::time::timeout(wait, messages.next()).await {
            Err(_) => return Err(stream_error("no message in time".into())),
            Ok(None) => return Err(stream_error("the stream ended".into())),
            Ok(Some(Err(e))) => return Err(stream_error(e.to_string())),
            Ok(Some(Ok(m))) => m,
        };
        let Ok(info) = msg.info() else { continue };
        let seq = info.stream_sequence;
        if seq > upto {
            return Ok(upto);
        }
        if feed::topics(&msg).contains(&topic)
            && let Some(event) = feed::stored(&msg, seq)
            && !elsewhere(&other, topic, &event)
        {
            offer(handle, event.frame(topic), cfg.write_deadline).await?;
        }
        if seq == upto {
            return Ok(upto);
        }
    }
}

fn elsewhere(subscriptions: &HashMap<String, u64>, topic: &str, event: &crate::history::StoredEvent) -> bool {
    event
        .topics
        .iter()
        .any(|t| &**t != topic && subscriptions.get(&**t).is_some_and(|after| event.seq > *after))
}
