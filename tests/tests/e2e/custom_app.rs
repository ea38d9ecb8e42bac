//! Services of one test started with settings `spawn_app` does not offer: a
//! dead Redis, a short retention interval, several worker processes. Built
//! from the harness's own parts, so isolation and cleanup are the same.

use std::time::Duration;

use anyhow::Context;
use gad_e2e::cleanup::Cleanup;
use gad_e2e::isolation::Isolation;
use gad_e2e::services::ServiceUrls;
use gad_e2e::tasks::ServiceTasks;
use gad_e2e::users::SeedUser;
use gad_e2e::{ApiResponse, unused_port};
use gad_workers::WorkersSettings;
use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

pub struct CustomApp {
    pub iso: Isolation,
    pub db: PgPool,
    pub client: reqwest::Client,
    /// `http://…` of ingress, once started.
    pub http: Option<String>,
    tasks: ServiceTasks,
    cleanup: Cleanup,
}

impl CustomApp {
    /// A fresh database and prefixes; `edit` may change any section first.
    pub async fn new(edit: impl FnOnce(&mut Isolation)) -> anyhow::Result<Self> {
        let urls = ServiceUrls::get()?;
        urls.check_nats().await?;
        let mut iso = Isolation::create(urls).await?;
        let nats = iso.nats.clone();
        edit(&mut iso);
        // The prefixes as created (an edit may point NATS elsewhere), the
        // broker as chosen.
        let cleanup = Cleanup::new(urls, &iso.database.name, &nats, &iso.queue);
        let db = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&iso.postgres.url)
            .await
            .context("connecting to the test database")?;
        Ok(Self {
            iso,
            db,
            client: gad_e2e::client::http_client()?,
            http: None,
            tasks: ServiceTasks::new(CancellationToken::new()),
            cleanup,
        })
    }

    /// A Redis URL on a port nothing listens on.
    pub fn dead_redis(iso: &mut Isolation) {
        if let Ok(port) = unused_port() {
            iso.redis.url = format!("redis://127.0.0.1:{port}");
        }
    }

    /// Ingress, ready to serve, with this app's isolation.
    pub async fn start_ingress(&mut self) -> anyhow::Result<()> {
        let addr = gad_e2e::ingress::start(
            &self.iso,
            self.iso.nats.clone(),
            Some(Duration::from_secs(10)),
            &mut self.tasks,
        )
        .await?;
        self.http = Some(format!("http://{addr}"));
        Ok(())
    }

    /// One more worker process, its settings edited by `edit`.
    pub async fn start_workers(&mut self, edit: impl FnOnce(&mut WorkersSettings)) -> anyhow::Result<()> {
        let mut settings = gad_e2e::workers::settings(&self.iso);
        edit(&mut settings);
        let app = gad_workers::Application::build(settings)
            .await
            .context("building workers")?;
        self.tasks.spawn("workers", app.run_until(self.tasks.shutdown()));
        Ok(())
    }

    pub async fn user(&self, email: &str) -> anyhow::Result<SeedUser> {
        SeedUser::load(&self.db, &self.iso.auth, email).await
    }

    pub async fn send(&self, method: Method, path: &str, token: &str) -> anyhow::Result<ApiResponse> {
        let base = self.http.as_deref().context("ingress not started")?;
        let response = self
            .client
            .request(method, format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(ApiResponse {
            status,
            headers,
            body,
            text,
        })
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        let stopped = self.tasks.stop().await;
        self.db.close().await;
        let cleaned = self.cleanup.run().await;
        stopped.and(cleaned)
    }
}
