//! The revocation mirror is complete whatever happened while an ingress
//! was away (domain.md §6.2): a new ingress loads every key before it
//! serves authenticated requests, and one whose watch died still learns of
//! later revocations by reconciling with the bucket.

use std::time::Duration;

use gad_e2e::tasks::ServiceTasks;
use gad_e2e::users::{self, SeedUser};
use gad_shared::auth::{Revocations, TokenVerifier};
use gad_shared::revocation::RECONCILE_EVERY;
use gad_shared::topology::{self, Topology};
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

use crate::custom_app::CustomApp;

const READY: Duration = Duration::from_secs(10);
/// Keys that are no one's, so the load must go past more than one batch.
const FILLER: usize = 300;

async fn me(app: &CustomApp, base: &str, user: &SeedUser) -> anyhow::Result<StatusCode> {
    Ok(app
        .client
        .get(format!("{base}/api/v1/users/me"))
        .bearer_auth(&user.token)
        .send()
        .await?
        .status())
}

fn jti(app: &CustomApp, user: &SeedUser) -> anyhow::Result<String> {
    let caller = TokenVerifier::new(&app.iso.auth, Revocations::default())
        .verify(&user.token)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(caller.jti)
}

async fn start_ingress(app: &CustomApp, tasks: &mut ServiceTasks) -> anyhow::Result<String> {
    let settings = gad_e2e::ingress::settings(&app.iso, app.iso.nats.clone());
    let addr = gad_e2e::ingress::start_with(settings, Some(READY), tasks).await?;
    Ok(format!("http://{addr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_revoked_while_an_ingress_was_down_are_refused_by_the_next_one() -> anyhow::Result<()> {
    let app = CustomApp::new(|_| {}).await?;
    let (efectivo, supervisor, admin) = (
        app.user(users::EFECTIVO).await?,
        app.user(users::SUPERVISOR).await?,
        app.user(users::ADMIN).await?,
    );
    let mut first = ServiceTasks::new(CancellationToken::new());
    let base = start_ingress(&app, &mut first).await?;
    for user in [&efectivo, &supervisor, &admin] {
        assert_eq!(me(&app, &base, user).await?, StatusCode::OK);
    }
    first.stop().await?;

    // While no ingress runs: a logout of one token, a disable of one usuario.
    let (client, js) = topology::connect(&app.iso.nats).await?;
    let topology = Topology::new(&app.iso.nats);
    let bucket = js.get_key_value(topology.revocation_bucket()).await?;
    for n in 0..FILLER {
        bucket
            .put(Revocations::jti_key(&format!("filler-{n}")), "1".into())
            .await?;
    }
    bucket
        .put(Revocations::jti_key(&jti(&app, &efectivo)?), "1".into())
        .await?;
    let since = chrono::Utc::now().timestamp() + 1;
    let value = format!("{{\"valid_since\":{since}}}");
    bucket.put(Revocations::user_key(supervisor.id), value.into()).await?;

    let mut second = ServiceTasks::new(CancellationToken::new());
    let base = start_ingress(&app, &mut second).await?;
    assert_eq!(
        me(&app, &base, &efectivo).await?,
        StatusCode::UNAUTHORIZED,
        "logged-out token"
    );
    assert_eq!(
        me(&app, &base, &supervisor).await?,
        StatusCode::UNAUTHORIZED,
        "disabled usuario"
    );
    assert_eq!(me(&app, &base, &admin).await?, StatusCode::OK);

    // The watch's consumer vanishes (as after a server restart that lost it):
    // a revocation made meanwhile still reaches the running ingress.
    let mut stream = js.get_stream(format!("KV_{}", topology.revocation_bucket())).await?;
    let mut names = stream.consumer_names();
    let mut consumers = Vec::new();
    while let Some(name) = futures::StreamExt::next(&mut names).await {
        consumers.push(name?);
    }
    for name in &consumers {
        stream.delete_consumer(name).await?;
    }
    bucket
        .put(Revocations::jti_key(&jti(&app, &admin)?), "1".into())
        .await?;
    let deadline = tokio::time::Instant::now() + RECONCILE_EVERY + Duration::from_secs(10);
    loop {
        if me(&app, &base, &admin).await? == StatusCode::UNAUTHORIZED {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "a revocation missed by the watch was never reconciled"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stream.info().await;
    drop(client);
    second.stop().await?;
    app.stop().await
}
