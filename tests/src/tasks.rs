//! The services of one test, each running on its own task until one shared
//! token is cancelled.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Longer than every service's grace period in tests (2 s).
const STOP_WITHIN: Duration = Duration::from_secs(15);

pub struct ServiceTasks {
    shutdown: CancellationToken,
    running: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
}

impl ServiceTasks {
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            shutdown,
            running: Vec::new(),
        }
    }

    /// The token the services' `run_until` watch.
    pub fn shutdown(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub fn spawn<E>(&mut self, name: &'static str, service: impl Future<Output = Result<(), E>> + Send + 'static)
    where
        E: Into<anyhow::Error> + Send + 'static,
    {
        let handle = tokio::spawn(async move { service.await.map_err(Into::into) });
        self.running.push((name, handle));
    }

    /// Cancels the token and waits for every service to return.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let mut failures = Vec::new();
        for (name, handle) in self.running.drain(..) {
            match tokio::time::timeout(STOP_WITHIN, handle).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => failures.push(format!("{name}: {e:#}")),
                Ok(Err(join)) => failures.push(format!("{name}: task failed: {join}")),
                Err(_) => failures.push(format!("{name}: did not stop within {STOP_WITHIN:?}")),
            }
        }
        anyhow::ensure!(
            failures.is_empty(),
            "services did not stop cleanly: {}",
            failures.join("; ")
        );
        Ok(())
    }
}

impl Drop for ServiceTasks {
    fn drop(&mut self) {
        // A test that failed before `stop`: the services still get the signal.
        self.shutdown.cancel();
    }
}
