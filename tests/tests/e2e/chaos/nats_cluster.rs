//! Issue 9: a three-node JetStream cluster (`sync_interval: always`, every
//! stream and bucket with three replicas) loses the leader of the jobs
//! stream to SIGKILL under a steady load, and gets it back later.
//!
//! Ingress and the workers get every node's URL (`nats.url` as a list) and
//! must reconnect on their own: before the kill the test moves the jobs
//! stream's leader, and the tasks consumer's, to the node ingress is
//! connected to, so the one kill takes a leader election, a consumer
//! election and a client reconnection at once. Every job that got a 202 must
//! reach a terminal status exactly once (one `jobs` row, one tarea, one
//! creation history row), and the test prints the outage: the time the
//! accepted rate stayed below half the steady rate.

mod cluster;
mod leaders;
mod steady;

use std::time::Duration;

use gad_e2e::users::ADMIN;
use gad_shared::topology::{self, Topology};

use super::load::{self, Submitter};
use crate::custom_app::CustomApp;
use cluster::NatsCluster;
use leaders::{Asset, move_leader, wait_leader};
use steady::Steady;

/// Task creations per second: what this 2-core machine sustains with room
/// to spare (each is a PostgreSQL transaction), so a dip is the cluster's.
const RATE: u32 = 40;
/// Load before the steady rate is measured (pools warm, consumer bound).
const WARMUP: Duration = Duration::from_secs(2);
/// Steady rate measured over this long, before the kill.
const STEADY: Duration = Duration::from_secs(4);
/// The node stays dead this long.
const DOWN: Duration = Duration::from_secs(8);
/// Load after the restart.
const AFTER: Duration = Duration::from_secs(6);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_jobs_stream_leader_loses_no_accepted_job() -> anyhow::Result<()> {
    let mut cluster = NatsCluster::start(3).await?;
    let urls = cluster.urls();
    let mut app = CustomApp::new(|iso| {
        iso.nats.url = urls;
        iso.nats.replicas = 3;
    })
    .await?;
    app.start_workers(|s| {
        s.workers.groups = vec!["tasks".into()];
        let g = &mut s.workers.default_group;
        g.concurrency = 8;
        g.max_ack_pending = 256;
        // A delivery whose ack died with the leader comes back this soon.
        g.ack_wait = Duration::from_secs(5);
        g.deadline = Duration::from_secs(3);
    })
    .await?;
    app.start_ingress().await?;
    let admin = app.user(ADMIN).await?;
    let (_admin_client, js) = topology::connect(&app.iso.nats).await?;
    let topo = Topology::new(&app.iso.nats);
    let jobs = topo.jobs_stream();
    let stream = Asset {
        stream: &jobs,
        consumer: None,
    };
    let consumer = Asset {
        stream: &jobs,
        consumer: Some("tasks"),
    };

    // Where the services are connected: ingress follows the status bucket's
    // subject, the workers the max-deliveries advisory of the jobs stream.
    let within = Duration::from_secs(10);
    let victim = cluster
        .wait_node_subscribed_to(&topo.job_status_updates(), within)
        .await?;
    let workers_on = cluster
        .wait_node_subscribed_to(&format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{jobs}.*"), within)
        .await?;
    move_leader(&js, stream, &victim).await?;
    move_leader(&js, consumer, &victim).await?;

    let submit = Submitter {
        client: app.client.clone(),
        http: app.http.clone().unwrap_or_default(),
        token: admin.token.clone(),
    };
    let load = Steady::start(submit, load::prefix('C'), admin.id, RATE, 256);
    tokio::time::sleep(WARMUP + STEADY).await;

    anyhow::ensure!(
        wait_leader(&js, stream, Duration::from_secs(5)).await? == victim,
        "the leader moved"
    );
    let killed_at = load.elapsed();
    cluster.kill(&victim).await?;
    tokio::time::sleep(DOWN).await;
    let new_leader = wait_leader(&js, stream, Duration::from_secs(10)).await?;
    let restarted_at = load.elapsed();
    cluster.restart(&victim).await?;
    tokio::time::sleep(AFTER).await;
    let end = load.elapsed();
    let timeline = load.stop().await?;

    let accepted = timeline.accepted();
    let by_status = load::wait_terminal(&app.db, &accepted, Duration::from_secs(90)).await?;

    let steady = timeline.rate(WARMUP, WARMUP + STEADY);
    let (outage, span) = timeline.below(killed_at, restarted_at, steady / 2.0);
    let (rejoin_dip, _) = timeline.below(restarted_at, end, steady / 2.0);
    let recovered = timeline.rate(end - Duration::from_secs(3), end);
    println!(
        "nats cluster: 3 nodes, sync_interval always, R3 streams; killed {victim} (leader of the jobs stream and \
         the tasks consumer, ingress' node; the workers' is {workers_on}) at {killed_at:.1?}, new stream leader {new_leader}, \
         restarted at {restarted_at:.1?}\n\
         steady {steady:.1} accepted jobs/s (offered {RATE}/s); outage (accepted < half of steady) {outage:.2?}{}; \
         after the restart {rejoin_dip:.2?} below half; last 3 s {recovered:.1} jobs/s; \
         {} accepted in all, {} skipped ticks\n{}",
        span.map(|(a, b)| format!(" from {a:.2?} to {:.2?}", b + Duration::from_millis(250)))
            .unwrap_or_default(),
        accepted.len(),
        timeline.skipped,
        timeline.per_second(end)
    );

    // Every accepted job ran, once.
    assert_eq!(
        by_status.get("succeeded").copied(),
        Some(accepted.len() as i64),
        "{by_status:?}"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE job_id = ANY($1)")
        .bind(&accepted)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(rows, accepted.len() as i64, "one jobs row per accepted job");
    let per_job = load::task_effects(&app.db, "", &accepted).await?.1;
    assert_eq!(
        per_job.get(&1).copied(),
        Some(accepted.len() as i64),
        "one tarea creation per accepted job: {per_job:?}"
    );
    // The cluster kept serving, and came back to the steady rate.
    assert_ne!(new_leader, victim);
    assert!(
        steady >= f64::from(RATE) * 0.8,
        "steady rate {steady:.1}/s of {RATE}/s offered"
    );
    assert!(outage < DOWN, "accepted rate never recovered while {victim} was down");
    assert!(recovered >= steady / 2.0, "{recovered:.1} jobs/s after the restart");

    app.stop().await?;
    drop(cluster);
    Ok(())
}
