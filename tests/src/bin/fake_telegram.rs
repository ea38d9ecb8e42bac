//! The fake Telegram Bot API as a process, for the local run: point the
//! broadcaster's `telegram.api_url` at it. Updates are injected with
//! `POST /_fake/updates`, calls are listed by `GET /_fake/calls`, failures set
//! with `POST /_fake/faults` (see `gad_e2e::fake_telegram`).

use std::net::SocketAddr;

use clap::Parser;
use gad_e2e::fake_telegram::FakeTelegram;

#[derive(Parser)]
struct Args {
    /// Address to serve the Bot API on.
    #[arg(long, default_value = "127.0.0.1:8091")]
    bind: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let fake = FakeTelegram::start(args.bind).await?;
    println!("fake Telegram Bot API on {}", fake.url());
    gad_shared::shutdown::signal().await;
    drop(fake);
    Ok(())
}
