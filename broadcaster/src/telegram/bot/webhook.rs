//! Webhook mode: Telegram posts updates to ingress, which stores each in
//! `GAD_TELEGRAM` once (message id = `update_id`); here one durable consumer
//! shared by every replica feeds them to the same handlers as long polling.
//! One update in flight cluster-wide (`max_ack_pending` 1), so a chat's
//! updates are handled in the order Telegram sent them, as with polling.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use gad_shared::topology::Topology;
use teloxide::payloads::SetWebhookSetters;
use teloxide::prelude::Requester;
use teloxide::requests::Request;
use teloxide::types::{AllowedUpdate, Update};
use tokio_util::sync::CancellationToken;

use super::{BotContext, backoff, call};

/// The durable consumer's name, shared by every replica.
pub const DURABLE: &str = "telegram-bot";

pub type Consumer = consumer::Consumer<consumer::pull::Config>;

/// The shared consumer of `GAD_TELEGRAM`, created if missing.
pub async fn consumer(
    js: &jetstream::Context,
    topology: &Topology,
    ack_wait: Duration,
) -> Result<Consumer, async_nats::Error> {
    let stream = js.get_stream(topology.telegram_stream()).await?;
    let consumer = stream
        .get_or_create_consumer(
            DURABLE,
            consumer::pull::Config {
                durable_name: Some(DURABLE.into()),
                filter_subject: topology.telegram_updates_subject(),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait,
                max_ack_pending: 1,
                ..Default::default()
            },
        )
        .await?;
    Ok(consumer)
}

/// Registers the webhook (when `telegram.webhook_url` is set), then handles
/// stored updates until `cancel`.
pub async fn run(ctx: BotContext, consumer: Consumer, cancel: CancellationToken) {
    register(&ctx, &cancel).await;
    super::menu::register(&ctx).await;
    let mut failures: u32 = 0;
    while !cancel.is_cancelled() {
        let messages = tokio::select! {
            _ = cancel.cancelled() => break,
            m = consumer.messages() => m,
        };
        let mut messages = match messages {
            Ok(m) => m,
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "telegram updates: consumer unavailable");
                backoff(&ctx, failures, &cancel).await;
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => return,
                m = messages.next() => m,
            };
            let message = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "telegram updates: pull failed");
                    break;
                }
                None => break,
            };
            failures = 0;
            match serde_json::from_slice::<Update>(&message.payload) {
                Ok(update) => super::handle(&ctx, update).await,
                // Redelivering what cannot be read would only block the rest.
                Err(e) => tracing::warn!(error = %e, "telegram update not understood; dropped"),
            }
            if let Err(e) = message.ack().await {
                tracing::warn!(error = %e, "telegram update not acknowledged; it will be handled again");
            }
        }
    }
}

/// `setWebhook` with the secret Telegram must send back, retried until it
/// succeeds or `cancel`. Without a URL the webhook is managed elsewhere.
async fn register(ctx: &BotContext, cancel: &CancellationToken) {
    let Some(url) = ctx.settings.webhook_url.as_deref() else {
        return;
    };
    let url = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "telegram.webhook_url is not a URL; webhook not registered");
            return;
        }
    };
    let mut failures: u32 = 0;
    while !cancel.is_cancelled() {
        let mut request = ctx.bot.set_webhook(url.clone()).allowed_updates([
            AllowedUpdate::Message,
            AllowedUpdate::EditedMessage,
            AllowedUpdate::CallbackQuery,
        ]);
        if let Some(secret) = ctx.settings.webhook_secret.as_deref() {
            request = request.secret_token(secret.to_string());
        }
        match call(ctx, request.send()).await {
            Ok(_) => {
                tracing::info!("telegram webhook registered");
                return;
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "telegram setWebhook failed");
                backoff(ctx, failures, cancel).await;
            }
        }
    }
}
