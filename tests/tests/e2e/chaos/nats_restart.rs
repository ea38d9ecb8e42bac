//! The test's own NATS server is restarted mid-run: while it is down
//! ingress answers 503 (nothing accepted it cannot keep), and every job that
//! got a 202, before or after, completes.

use std::time::Duration;

use gad_e2e::nats_server::NatsServer;
use gad_e2e::users::ADMIN;

use super::load::{self, Submitter};
use crate::custom_app::CustomApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_refuses_work_while_down_and_loses_no_accepted_job() -> anyhow::Result<()> {
    let mut nats = NatsServer::start().await?;
    let url = nats.url();
    let mut app = CustomApp::new(|iso| iso.nats.url = url).await?;
    app.start_workers(|s| s.workers.groups = vec!["tasks".into()]).await?;
    app.start_ingress().await?;
    let admin = app.user(ADMIN).await?;
    let submit = Submitter {
        client: app.client.clone(),
        http: app.http.clone().unwrap_or_default(),
        token: admin.token.clone(),
    };
    let prefix = load::prefix('N');
    let mut accepted = submit.tasks(&format!("{prefix}A"), admin.id, 100).await?;

    nats.down().await?;
    let mut refused = 0;
    for i in 0..5 {
        match submit.task(&format!("{prefix}D-{i:05}"), admin.id).await? {
            Some(id) => accepted.push(id),
            None => refused += 1,
        }
    }
    assert_eq!(refused, 5, "ingress refuses work while NATS is down");

    nats.up().await?;
    // Ingress and workers reconnect on their own; submissions succeed again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut i = 0;
    while accepted.len() < 200 {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "ingress never accepted again");
        if let Some(id) = submit.task(&format!("{prefix}B-{i:05}"), admin.id).await? {
            accepted.push(id);
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        i += 1;
    }

    let by_status = load::wait_terminal(&app.db, &accepted, Duration::from_secs(40)).await?;
    assert_eq!(
        by_status.get("succeeded").copied(),
        Some(accepted.len() as i64),
        "{by_status:?}"
    );
    app.stop().await?;
    drop(nats);
    Ok(())
}
