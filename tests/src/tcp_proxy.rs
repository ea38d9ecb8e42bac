//! A TCP proxy the test controls, to take a server away from the services
//! without touching the server: while it is down, open connections are cut
//! and new ones are accepted and closed at once (so clients fail fast
//! instead of hanging), and the server itself keeps running for the test.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub struct TcpProxy {
    addr: SocketAddr,
    down: watch::Sender<bool>,
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the proxy")?;
        let addr = listener.local_addr()?;
        let (down, _) = watch::channel(false);
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(accept(listener, upstream, down.clone(), stop.clone(), tracker.clone()));
        Ok(Self {
            addr,
            down,
            stop,
            tracker,
        })
    }

    /// A proxy in front of the server of `url` (`scheme://[user@]host[:port]/…`,
    /// `default_port` when it names none), and `url` pointed at the proxy.
    pub async fn in_front_of(url: &str, default_port: u16) -> anyhow::Result<(Self, String)> {
        let rest = url.split_once("://").context("no scheme")?.1;
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let written = authority.rsplit('@').next().unwrap_or_default().to_string();
        let with_port = if written.contains(':') {
            written.clone()
        } else {
            format!("{written}:{default_port}")
        };
        let upstream = std::net::ToSocketAddrs::to_socket_addrs(&with_port)?
            .next()
            .context("unresolvable")?;
        let proxy = Self::start(upstream).await?;
        let proxied = url.replacen(&written, &proxy.addr().to_string(), 1);
        Ok((proxy, proxied))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every connection and refuses new ones (`true`), or forwards again.
    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    down: watch::Sender<bool>,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let client = tokio::select! {
            _ = stop.cancelled() => return,
            c = listener.accept() => c,
        };
        let Ok((client, _)) = client else { continue };
        if *down.borrow() {
            drop(client);
            continue;
        }
        tracker.spawn(pipe(client, upstream, down.subscribe(), stop.clone()));
    }
}

async fn pipe(mut client: TcpStream, upstream: SocketAddr, mut down: watch::Receiver<bool>, stop: CancellationToken) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = down.wait_for(|d| *d) => {}
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
    }
}
