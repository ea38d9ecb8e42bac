//! Phase 4: the raw JetStream async-publish rate (and, with the jobs on
//! RabbitMQ, the raw confirmed-publish rate there) on the same server in the
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

/// Phase 4 with the jobs on RabbitMQ: the raw confirmed-publish rate into a
/// durable quorum queue (as the lanes are) on the same broker in the same
/// run: 256 publishes awaiting their confirm, persistent, job-sized messages.
pub async fn run_rabbitmq(amqp_url: &str, queue: &str, secs: u64) -> anyhow::Result<RawPublish> {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions};
    use lapin::types::{AMQPValue, FieldTable};
    use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties};

    let connection = Connection::connect(
        amqp_url,
        ConnectionProperties::default().with_connection_name("bench_pipeline raw publish".into()),
    )
    .await
    .context("connecting to RabbitMQ")?;
    let channel = connection.create_channel().await?;
    channel
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await
        .context("deleting an old raw-publish queue")?;
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    channel
        .queue_declare(queue.into(), QueueDeclareOptions::durable(), args)
        .await
        .context("declaring the raw-publish queue")?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    println!(
        "\n[4] raw RabbitMQ confirmed publish: 256 confirms in flight, persistent, 200-byte messages, quorum queue, {secs}s"
    );
    let payload = vec![0x5au8; 200];
    let properties = BasicProperties::default().with_delivery_mode(2);
    let end = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    let (mut acked, mut errors) = (0u64, 0u64);
    // A nack, or an ack that came back as returned (no queue took it), is an error.
    let confirmed =
        |r: Result<Confirmation, lapin::Error>| matches!(r, Ok(Confirmation::Ack(None) | Confirmation::NotRequested));
    while Instant::now() < end {
        while in_flight.len() < 256 {
            match channel
                .basic_publish(
                    "".into(),
                    queue.into(),
                    BasicPublishOptions::default(),
                    &payload,
                    properties.clone(),
                )
                .await
            {
                Ok(confirm) => in_flight.push(confirm),
                Err(e) => {
                    errors += 1;
                    if !channel.status().connected() {
                        return Err(e).context("the raw-publish channel closed");
                    }
                }
            }
        }
        if let Some(r) = in_flight.next().await {
            if confirmed(r) { acked += 1 } else { errors += 1 }
        }
    }
    while let Some(r) = in_flight.next().await {
        if confirmed(r) { acked += 1 } else { errors += 1 }
    }
    let rate = acked as f64 / started.elapsed().as_secs_f64();
    let _ = channel.queue_delete(queue.into(), QueueDeleteOptions::default()).await;
    let _ = connection.close(200, "done".into()).await;
    println!("    {acked} confirmed = {rate:.0}/s; errors {errors}");
    Ok(RawPublish { rate, errors })
}
