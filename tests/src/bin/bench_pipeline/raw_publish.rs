//! Phase 4: the raw JetStream async-publish rate on the same server in the
//! same run (256 acks in flight, file storage, job-sized messages), the
//! ceiling ingress' accepted rate is read against.

use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;

pub struct RawPublish {
    pub rate: f64,
    pub errors: u64,
}

pub async fn run(nats_url: &str, stream_prefix: &str, subject_prefix: &str, secs: u64) -> anyhow::Result<RawPublish> {
    let client = async_nats::connect(gad_shared::topology::server_urls(nats_url))
        .await
        .context("connecting to NATS")?;
    let js = jetstream::new(client);
    let name = format!("{stream_prefix}RAW_PUBLISH");
    let subject = format!("{subject_prefix}.rawpublish");
    let _ = js.delete_stream(&name).await;
    js.create_stream(stream::Config {
        name: name.clone(),
        subjects: vec![subject.clone()],
        storage: stream::StorageType::File,
        max_bytes: 1 << 30,
        ..Default::default()
    })
    .await
    .context("creating the raw-publish stream")?;
    println!("\n[4] raw JetStream async publish: 256 acks in flight, 200-byte messages, {secs}s");
    let payload = Bytes::from(vec![0x5au8; 200]);
    let end = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    let (mut acked, mut errors) = (0u64, 0u64);
    while Instant::now() < end {
        while in_flight.len() < 256 {
            match js.publish(subject.clone(), payload.clone()).await {
                Ok(ack) => in_flight.push(ack.into_future()),
                Err(_) => errors += 1,
            }
        }
        match in_flight.next().await {
            Some(Ok(_)) => acked += 1,
            Some(Err(_)) => errors += 1,
            None => {}
        }
    }
    while let Some(r) = in_flight.next().await {
        if r.is_ok() {
            acked += 1;
        } else {
            errors += 1;
        }
    }
    let rate = acked as f64 / started.elapsed().as_secs_f64();
    let _ = js.delete_stream(&name).await;
    println!("    {acked} acknowledged = {rate:.0}/s; errors {errors}");
    Ok(RawPublish { rate, errors })
}
