//! The HTTP side of a test: requests as a client sends them, responses with
//! status, headers and JSON body, and polling a job until it ends.

use std::time::Duration;

use anyhow::Context;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::app::TestApp;

/// What a client saw: status, headers, and the body parsed as JSON
/// (`Value::Null` when it is empty or not JSON; `text` keeps it raw).
#[derive(Debug)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl ApiResponse {
    /// A header's value as text, if present and printable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Builds the client every test uses: no proxy, bounded waits.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(45))
        .build()?)
}

/// Job statuses after which nothing changes (domain.md §2.1, jobs).
pub fn is_terminal(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "dead" | "cancelled")
}

impl TestApp {
    /// `GET {http}{path}`, with `Authorization: Bearer <token>` when given.
    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<ApiResponse> {
        self.get_with(path, token, &[]).await
    }

    /// [`TestApp::get`] with extra request headers.
    pub async fn get_with(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<ApiResponse> {
        let mut request = self.client.get(format!("{}{path}", self.http));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.with_context(|| format!("GET {path}"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .with_context(|| format!("reading the body of GET {path}"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(ApiResponse {
            status,
            headers,
            body,
            text,
        })
    }

    /// Polls `GET /api/v1/jobs/{id}` until the job is terminal; fails after `within`.
    pub async fn wait_for_job(&self, job_id: &str, token: &str, within: Duration) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + within;
        let mut delay = Duration::from_millis(10);
        loop {
            let r = self.get(&format!("/api/v1/jobs/{job_id}"), Some(token)).await?;
            anyhow::ensure!(r.status == StatusCode::OK, "GET job {job_id}: {} {}", r.status, r.text);
            if r.body["status"].as_str().is_some_and(is_terminal) {
                return Ok(r.body);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() + delay < deadline,
                "job {job_id} not finished within {within:?}; last seen {}",
                r.text
            );
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(200));
        }
    }
}
