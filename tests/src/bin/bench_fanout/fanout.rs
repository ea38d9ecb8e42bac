//! Phases 1 (saturation) and 2 (fixed rate): the same subscribed clients,
//! events published onto `GAD_EVENTS` by this process.

use std::time::{Duration, Instant};

use anyhow::bail;
use gad_shared::auth::TokenIssuer;

use crate::client::{Fleet, now_us};
use crate::procfs::{cpu_line, snapshot};
use crate::publish::Publisher;
use crate::{Args, TARGET_P99_MS, TARGET_RATE, check, latency_histogram, ms, thousands};

/// Read buffer of a subscribed client: large enough to take a burst of
/// frames in one read (these clients must keep up with the broadcaster).
const FANOUT_READ_BUFFER: usize = 32 * 1024;
/// After a phase, how long the clients get to receive what was published.
const DRAIN: Duration = Duration::from_secs(30);

pub async fn run(args: &Args, db: &sqlx::PgPool, issuer: &TokenIssuer) -> anyhow::Result<Vec<String>> {
    let (tokens, users) = crate::tokens(db, issuer, true, args.fanout_clients, 2).await?;
    println!(
        "\n[1/2] opening {} clients over {users} nivel ≥ 2 usuarios, each subscribed to `{}`",
        tokens.len(),
        args.topic
    );
    let (fleet, report) = Fleet::open(
        &args.broadcaster_addr,
        tokens,
        Some(&args.topic),
        args.connect_concurrency,
        FANOUT_READ_BUFFER,
    )
    .await;
    println!(
        "    {} open in {:.1} s; 1013 answers retried: {}; failed: {}",
        report.established,
        report.elapsed.as_secs_f64(),
        report.try_later,
        report.failures()
    );
    let result = async {
        if report.established == 0 {
            bail!("no client could connect and subscribe");
        }
        let mut publisher = Publisher::connect(args).await?;
        let mut out = Vec::new();
        if args.phases.contains(&1) {
            out.push(saturation(args, &fleet, &mut publisher).await?);
        }
        if args.phases.contains(&2) {
            out.push(fixed_rate(args, &fleet, &mut publisher).await?);
        }
        Ok(out)
    }
    .await;
    fleet.close(Duration::from_secs(30)).await;
    result
}

/// A point of the measured window: when, and deliveries counted by then.
type Sample = (Instant, u64);

fn rate(a: Sample, b: Sample) -> f64 {
    b.1.saturating_sub(a.1) as f64 / b.0.duration_since(a.0).as_secs_f64().max(1e-9)
}

/// Waits until every open client has every published event; returns the
/// deliveries still missing when it gives up.
async fn drain(fleet: &Fleet, publisher: &mut Publisher) -> u64 {
    publisher.flush().await;
    let deadline = Instant::now() + DRAIN;
    loop {
        let missing = fleet.missing(publisher.expected());
        if missing == 0 || Instant::now() >= deadline {
            return missing;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn latency_text(samples: &[u32]) -> anyhow::Result<(String, f64)> {
    let h = latency_histogram(samples)?;
    let p99 = ms(h.value_at_quantile(0.99));
    let text = format!(
        "p50 {:.1} ms, p90 {:.1} ms, p99 {p99:.1} ms, p99.9 {:.1} ms, max {:.1} ms ({} deliveries)",
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.9)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
        h.len()
    );
    Ok((text, p99))
}

async fn saturation(args: &Args, fleet: &Fleet, p: &mut Publisher) -> anyhow::Result<String> {
    let clients = fleet.open_count();
    let closes_before = fleet.closes().0;
    println!(
        "\n[1] saturation: {clients} clients on `{}`; events published as fast as every client receives them \
         (at most {} events in flight end to end, {} PubAcks awaited at once); {} s warm-up + {} s measured",
        args.topic, args.window, args.max_acks, args.warmup_s, args.duration_s
    );
    let measure_from = Instant::now() + Duration::from_secs(args.warmup_s);
    let end = measure_from + Duration::from_secs(args.duration_s.max(1));
    let mut next_sample = measure_from;
    let mut samples: Vec<Sample> = Vec::new();
    let mut published_at_start = 0;
    let mut cpu_a = None;
    let mut slowest = fleet.min_open().unwrap_or(0);
    loop {
        let now = Instant::now();
        if now >= next_sample {
            let delivered = fleet.delivered();
            if samples.is_empty() {
                cpu_a = Some(snapshot(args.broadcaster_pid));
                fleet.start_window(now_us());
                published_at_start = p.published;
            }
            samples.push((now, delivered));
            if next_sample >= end {
                break;
            }
            next_sample += Duration::from_secs(1);
        }
        if p.expected().saturating_sub(slowest) >= args.window {
            let Some(m) = fleet.min_open() else {
                bail!("every client closed: {}", fleet.closes().1);
            };
            slowest = m;
            if p.expected().saturating_sub(slowest) >= args.window {
                // The clients are the window's worth behind: let them catch up.
                tokio::time::sleep(Duration::from_micros(500)).await;
                p.reap();
                continue;
            }
        }
        p.publish().await?;
    }
    let cpu_b = snapshot(args.broadcaster_pid);
    fleet.end_window(now_us());
    let published = p.published - published_at_start;
    let missing = drain(fleet, p).await;
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let total = rate(first, last);
    let per_second: Vec<f64> = samples.windows(2).map(|w| rate(w[0], w[1])).collect();
    let lo = per_second.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = per_second.iter().copied().fold(0.0, f64::max);
    let secs = last.0.duration_since(first.0).as_secs_f64();
    let (closes, closes_text) = fleet.closes();
    let closes = closes - closes_before;
    let cpu = cpu_a.map_or_else(String::new, |a| cpu_line(&a, &cpu_b, last.1 - first.1));
    let (latency, _) = latency_text(&fleet.take_latencies())?;
    println!(
        "    delivered {} frames in {secs:.1} s = {}/s (per second {}…{}); {} events/s published ({} B frames); \
         PubAck errors {}",
        thousands((last.1 - first.1) as f64),
        thousands(total),
        thousands(lo),
        thousands(hi),
        thousands(published as f64 / secs.max(1e-9)),
        fleet.frame_bytes(),
        p.errors
    );
    println!("    latency at saturation (queueing included): {latency}");
    println!("    {cpu}");
    let invalid = closes_and_gaps(closes, &closes_text, missing);
    Ok(format!(
        "1 saturation: {}/s deliveries to {clients} clients ({} B frames, topic {}, ≤ {} events in flight); \
         closes {closes}; {cpu}  [target ≥ {}/s {}]{invalid}",
        thousands(total),
        fleet.frame_bytes(),
        args.topic,
        args.window,
        thousands(TARGET_RATE),
        check(total >= TARGET_RATE && invalid.is_empty()),
    ))
}

async fn fixed_rate(args: &Args, fleet: &Fleet, p: &mut Publisher) -> anyhow::Result<String> {
    let clients = fleet.open_count();
    let closes_before = fleet.closes().0;
    let events_per_s = args.rate.max(1);
    let offered = events_per_s * clients as u64;
    println!(
        "\n[2] fixed rate: {events_per_s} events/s × {clients} clients = {} deliveries/s; {} s warm-up + {} s \
         measured; latency = receive time − publish time of every delivery (one clock, this process)",
        thousands(offered as f64),
        args.warmup_s,
        args.duration_s
    );
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let measure_from = start + Duration::from_secs(args.warmup_s);
    let end = measure_from + Duration::from_secs(args.duration_s.max(1));
    let mut first: Option<Sample> = None;
    let mut cpu_a = None;
    let mut behind = Duration::ZERO;
    for i in 0u64.. {
        let due = start + Duration::from_secs_f64(i as f64 / events_per_s as f64);
        if due >= end {
            break;
        }
        tokio::time::sleep_until(due).await;
        if first.is_none() && due >= measure_from {
            cpu_a = Some(snapshot(args.broadcaster_pid));
            fleet.start_window(now_us());
            first = Some((Instant::now(), fleet.delivered()));
        }
        if first.is_some() {
            behind = behind.max(tokio::time::Instant::now().duration_since(due));
        }
        p.publish().await?;
    }
    tokio::time::sleep_until(end).await;
    let last: Sample = (Instant::now(), fleet.delivered());
    let cpu_b = snapshot(args.broadcaster_pid);
    fleet.end_window(now_us());
    let missing = drain(fleet, p).await;
    let first = first.unwrap_or(last);
    let delivered_rate = rate(first, last);
    let (closes, closes_text) = fleet.closes();
    let closes = closes - closes_before;
    let cpu = cpu_a.map_or_else(String::new, |a| cpu_line(&a, &cpu_b, last.1 - first.1));
    let (latency, p99) = latency_text(&fleet.take_latencies())?;
    println!(
        "    delivered {}/s (offered {}/s); publisher at most {:.1} ms behind schedule; PubAck errors {}",
        thousands(delivered_rate),
        thousands(offered as f64),
        behind.as_secs_f64() * 1000.0,
        p.errors
    );
    println!("    publish→receive latency: {latency}");
    println!("    {cpu}");
    let invalid = closes_and_gaps(closes, &closes_text, missing);
    Ok(format!(
        "2 fixed rate: {latency} at {events_per_s} events/s × {clients} clients = {}/s delivered; closes {closes}; \
         {cpu}  [target p99 ≤ {TARGET_P99_MS} ms {}]{invalid}",
        thousands(delivered_rate),
        check(p99 <= TARGET_P99_MS && invalid.is_empty()),
    ))
}

/// Prints a phase's closes and missing deliveries; the summary's INVALID
/// mark when there were any (the rate of a run that lost clients is no figure).
fn closes_and_gaps(closes: u64, closes_text: &str, missing: u64) -> &'static str {
    println!(
        "    client closes/errors during the phase: {closes} ({closes_text}); deliveries missing after {DRAIN:?}: {missing}"
    );
    if closes > 0 || missing > 0 {
        " INVALID: clients were closed or missed events"
    } else {
        ""
    }
}
