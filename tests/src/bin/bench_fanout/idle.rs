//! Phase 3: memory per idle connection, from the broadcaster's VmRSS before
//! and with N connections open (kernel socket buffers are not in VmRSS).

use std::time::Duration;

use anyhow::Context;
use gad_shared::auth::TokenIssuer;

use crate::client::Fleet;
use crate::procfs::{idle_cpu_line, rss_kib, snapshot};
use crate::{Args, TARGET_KIB_PER_CONN, check, thousands};

/// Read buffer of an idle client (this process holds N of them too).
const IDLE_READ_BUFFER: usize = 4 * 1024;

/// The node's own connection count, from `/ws/stats` (nivel 3).
pub struct StatsProbe {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl StatsProbe {
    pub async fn new(args: &Args, db: &sqlx::PgPool, issuer: &TokenIssuer) -> anyhow::Result<Self> {
        let admin: Option<i64> =
            sqlx::query_scalar("SELECT id FROM usuarios WHERE deleted_at IS NULL AND nivel = 3 ORDER BY id LIMIT 1")
                .fetch_optional(db)
                .await
                .context("looking for a nivel 3 usuario")?;
        let token = admin.and_then(|id| issuer.issue(id, 3).ok()).map(|(t, _)| t);
        Ok(Self {
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?,
            url: format!("http://{}/ws/stats", args.broadcaster_addr),
            token,
        })
    }

    /// Connections the node holds; `None` when it cannot tell.
    pub async fn connections(&self) -> Option<u64> {
        let token = self.token.as_deref()?;
        let resp = self.http.get(&self.url).bearer_auth(token).send().await.ok()?;
        let body: serde_json::Value = resp.error_for_status().ok()?.json().await.ok()?;
        body["connections"].as_u64()
    }

    /// Waits until the node holds `n` connections (connections closed by
    /// the benchmark take a moment to leave it); returns the last count.
    pub async fn wait_for_connections(&self, n: u64, within: Duration) -> Option<u64> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let seen = self.connections().await;
            if seen.is_none_or(|c| c == n) || tokio::time::Instant::now() >= deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub async fn run(args: &Args, db: &sqlx::PgPool, issuer: &TokenIssuer, stats: &StatsProbe) -> anyhow::Result<String> {
    let pid = args
        .broadcaster_pid
        .context("phase 3 reads the broadcaster's VmRSS: pass --broadcaster-pid or BENCH_BROADCASTER_PID")?;
    let (tokens, users) = crate::tokens(db, issuer, false, args.idle_connections, args.idle_per_user).await?;
    let n = tokens.len();
    println!(
        "\n[3] idle memory: {} connections over {} nivel-1 usuarios (≤ {} each), {} handshakes at a time; \
         each connection holds only its automatic user.{{id}} subscription; run first, on a fresh broadcaster",
        thousands(n as f64),
        thousands(users as f64),
        n.div_ceil(users.max(1)),
        args.connect_concurrency
    );
    let base = stats.wait_for_connections(0, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(pid).context("reading the broadcaster's VmRSS")?;
    let (fleet, report) = Fleet::open(
        &args.broadcaster_addr,
        tokens,
        None,
        args.connect_concurrency,
        IDLE_READ_BUFFER,
    )
    .await;
    println!(
        "    {} open in {:.1} s ({}/s); 1013 answers retried: {}; failed: {}",
        report.established,
        report.elapsed.as_secs_f64(),
        thousands(report.established as f64 / report.elapsed.as_secs_f64().max(1e-9)),
        report.try_later,
        report.failures()
    );
    let cpu_a = snapshot(Some(pid));
    tokio::time::sleep(Duration::from_secs(args.settle_s)).await;
    let cpu = idle_cpu_line(&cpu_a, &snapshot(Some(pid)));
    let server = stats.connections().await;
    let with = rss_kib(pid).context("reading the broadcaster's VmRSS")?;
    let open = fleet.open_count();
    let (closes, closes_text) = fleet.closes();
    fleet.close(Duration::from_secs(60)).await;
    let left = stats.wait_for_connections(0, Duration::from_secs(30)).await;
    let after = rss_kib(pid);
    let count = |c: Option<u64>| c.map_or("?".into(), |c| c.to_string());
    let per_conn = with.saturating_sub(before) as f64 / open.max(1) as f64;
    println!(
        "    broadcaster VmRSS {} before ({} connections on the node), {} with {open} open ({} on the node), \
         {} after closing them ({} left): {per_conn:.1} KiB per connection",
        mib(before),
        count(base),
        mib(with),
        count(server),
        after.map_or("?".into(), mib),
        count(left),
    );
    println!("    while they idled for {} s: {cpu}", args.settle_s);
    println!("    client closes/errors while open: {closes} ({closes_text})");
    let invalid = if open < n || server.is_some_and(|s| s != open as u64) {
        " INCOMPLETE: not every connection was open"
    } else {
        ""
    };
    Ok(format!(
        "3 idle memory: {per_conn:.1} KiB per connection ({open} idle connections over {users} usuarios; \
         broadcaster VmRSS {} → {}; kernel socket buffers not included)  [target ≤ {TARGET_KIB_PER_CONN} KiB {}]{invalid}",
        mib(before),
        mib(with),
        check(per_conn <= TARGET_KIB_PER_CONN && invalid.is_empty()),
    ))
}
