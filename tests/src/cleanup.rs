//! Leaving nothing behind: the test's database and its NATS streams and
//! buckets are removed by [`TestApp::stop`](crate::TestApp::stop), or, when a
//! test ends without calling it (a failed assertion), by this guard's `Drop`.

use std::time::Duration;

use anyhow::Context;
use gad_shared::queue::rabbit::{RabbitLink, RabbitNames};
use gad_shared::queue::{Backend, QueueSettings};
use gad_shared::settings::NatsSettings;
use gad_shared::topology::{self, Topology};

use crate::database;
use crate::services::ServiceUrls;

pub struct Cleanup {
    urls: ServiceUrls,
    database: String,
    nats: NatsSettings,
    queue: QueueSettings,
    done: bool,
}

impl Cleanup {
    pub fn new(urls: &ServiceUrls, database: &str, nats: &NatsSettings, queue: &QueueSettings) -> Self {
        Self {
            urls: urls.clone(),
            database: database.to_string(),
            nats: nats.clone(),
            queue: queue.clone(),
            done: false,
        }
    }

    /// Removes the streams and buckets with the test's prefix, then the database.
    pub async fn run(&mut self) -> anyhow::Result<()> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        remove(&self.urls, &self.database, &self.nats, &self.queue).await
    }
}

async fn remove(urls: &ServiceUrls, db_name: &str, nats: &NatsSettings, queue: &QueueSettings) -> anyhow::Result<()> {
    // A test whose NATS URL points nowhere still has prefixes on the real server.
    let real = NatsSettings {
        url: urls.nats.clone(),
        ..nats.clone()
    };
    let streams = async {
        let (client, js) = tokio::time::timeout(Duration::from_secs(5), topology::connect(&real))
            .await
            .context("connecting to NATS for cleanup: timed out")??;
        Topology::new(&real).remove(&js).await;
        client.flush().await.ok();
        anyhow::Ok(())
    };
    let streams = streams.await;
    let rabbit = async {
        if queue.backend != Backend::Rabbitmq {
            return anyhow::Ok(());
        }
        let link = RabbitLink::lazy(&queue.rabbitmq, RabbitNames::new(nats), "gad-e2e cleanup");
        link.delete_all().await.context("removing the RabbitMQ queues")
    };
    let rabbit = rabbit.await;
    let db = database::drop_database(urls, db_name).await;
    streams.and(rabbit).and(db)
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        let (urls, db_name, nats, queue) = (
            self.urls.clone(),
            self.database.clone(),
            self.nats.clone(),
            self.queue.clone(),
        );
        // Drop may run inside the test's runtime, which must not be blocked
        // on: the removal gets a thread and a runtime of its own.
        let worker = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(30), remove(&urls, &db_name, &nats, &queue))
                    .await
                    .context("timed out")?
            })
        });
        match worker.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("gad-e2e: cleanup of {} failed: {e:#}", self.database),
            Err(_) => eprintln!("gad-e2e: cleanup of {} panicked", self.database),
        }
    }
}
