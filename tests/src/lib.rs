//! `gad-e2e`: end-to-end tests' harness. [`spawn_app`] starts workers,
//! ingress and broadcaster in the test's process against the real PostgreSQL,
//! NATS and Redis on loopback, isolated per test, and [`TestApp`] drives them
//! as a client would: HTTP in, WebSocket out.
//!
//! - [`services`]: where the shared servers are (env, or `.local/services.env`).
//! - [`database`]: the seeded template database and one clone per test.
//! - [`isolation`]: a test's database, NATS prefixes and JWT secret.
//! - [`workers`], [`ingress`], [`broadcaster`]: starting each service.
//! - [`board`], [`service_process`]: the WebSocket board alone, its
//!   broadcasters in this process or as OS processes, events published by
//!   the test.
//! - [`app`], [`tasks`], [`cleanup`]: the running app, its service tasks,
//!   and removing everything the test created.
//! - [`users`], [`client`], [`websocket`]: seeded logins with tokens, HTTP
//!   requests and job polling, and the WebSocket client.
//! - [`inspect`]: what the jobs stream and table hold, behind the API.
//! - [`fake_telegram`]: the fake Bot API the bot and the notification
//!   sender talk to, with scripted updates and injected failures.
//! - [`browser`]: headless Chromium driven over WebDriver, with screenshots,
//!   for the board page.
//! - [`amqp`]: a RabbitMQ exchange and queue of the test's own, for the
//!   AMQP bridge.
//! - [`gad_cli`]: the `gad` operator binary as a process (`gad import`).
//! - [`binaries`], [`service_process`], [`tcp_proxy`], [`nats_server`]: for
//!   chaos tests, the workers as an OS process (to kill or signal), a proxy
//!   that takes PostgreSQL away, and a NATS server of the test's own.

pub mod amqp;
pub mod app;
pub mod bench_format;
pub mod binaries;
pub mod board;
pub mod broadcaster;
pub mod browser;
pub mod cleanup;
pub mod client;
pub mod database;
pub mod fake_telegram;
pub mod gad_cli;
pub mod ingress;
pub mod inspect;
pub mod isolation;
pub mod nats_server;
pub mod scrape;
pub mod service_process;
pub mod services;
pub mod tasks;
pub mod tcp_proxy;
pub mod tls_servers;
pub mod users;
pub mod websocket;
pub mod workers;

pub use app::{
    TestApp, spawn_app, spawn_app_on, spawn_app_with_board, spawn_app_with_telegram, spawn_app_with_telegram_webhook,
    spawn_ingress_with_dead_nats, unused_port,
};
pub use client::{ApiResponse, is_terminal};
pub use database::SEED_PASSWORD;
pub use websocket::WsClient;
