//! The bot (§9): updates by long polling with teloxide, or from the webhook
//! through `GAD_TELEGRAM` ([`webhook`]), then one handler per update.
//! Unknown chats get only the linking text; linked usuarios act through the
//! same jobs as the HTTP API (`gad_shared::submit`), as themselves.
//!
//! - [`link`]: `/start CODE`, one-time codes, blocking after five bad ones.
//! - [`wizard`]: `/crear`, one step per message, state in Redis.
//! - [`finish`]: `/finalizar`, own running tasks, confirm, finish.
//! - [`history`]: `/historial`, own tasks ten per page.
//! - [`stats`]: `/estadisticas`, the usuario's figures of the last 30 days.
//! - [`answer`]: Aceptar / Rechazar on an assignment notification.
//! - [`location`]: location and live-location messages, as the unit's position.
//! - [`menu`]: the commands, registered as Telegram's command menu.
//! - [`jobs`]: submitting a job and waiting for its outcome.
//! - [`texts`]: what the bot says.

pub mod answer;
pub mod finish;
pub mod history;
pub mod jobs;
pub mod link;
pub mod location;
pub mod menu;
pub mod stats;
pub mod texts;
pub mod webhook;
pub mod wizard;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use gad_shared::redis_conn::Redis;
use gad_shared::topology::Topology;
use sqlx::PgPool;
use teloxide::Bot;
use teloxide::payloads::{GetUpdatesSetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::requests::Request;
use teloxide::types::{
    AllowedUpdate, CallbackQuery, ChatId, InlineKeyboardMarkup, Message, ParseMode, ReplyMarkup, Update, UpdateKind,
};
use tokio_util::sync::CancellationToken;

use super::limiter::{Limiter, Verdict};
use super::split::{MAX_MESSAGE_CHARS, split_html};
use crate::settings::TelegramSection;

/// A linked usuario, as the bot sees it.
#[derive(Debug, Clone)]
pub struct Usuario {
    pub id: i64,
    pub nivel: i16,
    pub nombre: String,
}

/// Everything the handlers reach.
pub struct BotContext {
    pub bot: Bot,
    pub db: PgPool,
    pub redis: Redis,
    pub redis_timeout: Duration,
    pub publisher: gad_shared::queue::Publisher,
    pub topology: Topology,
    pub job_status: kv::Store,
    pub settings: TelegramSection,
    /// Prefix of this bot's Redis keys (tenants share a Redis).
    pub key_prefix: String,
    /// The same cluster-wide limits as notifications: replies count too.
    pub limiter: Arc<Limiter>,
}

/// Polls `getUpdates` until `cancel`; each update is handled before the
/// next poll confirms it, so a crash re-reads what was not handled.
pub async fn run(ctx: BotContext, cancel: CancellationToken) {
    // Telegram refuses getUpdates while a webhook is set (a switch from
    // webhook mode): remove it first. Updates wait at Telegram meanwhile.
    if let Err(e) = call(&ctx, ctx.bot.delete_webhook().send()).await {
        tracing::warn!(error = %e, "telegram deleteWebhook failed");
    }
    menu::register(&ctx).await;
    let poll_secs = ctx.settings.poll_timeout.as_secs().min(u64::from(u32::MAX)) as u32;
    let mut offset: i32 = 0;
    let mut failures: u32 = 0;
    loop {
        let request = ctx
            .bot
            .get_updates()
            .offset(offset)
            .timeout(poll_secs)
            .allowed_updates([
                AllowedUpdate::Message,
                AllowedUpdate::EditedMessage,
                AllowedUpdate::CallbackQuery,
            ]);
        let polled = tokio::select! {
            _ = cancel.cancelled() => break,
            r = tokio::time::timeout(ctx.settings.poll_timeout + ctx.settings.api_timeout, request.send()) => r,
        };
        let updates = match polled {
            Ok(Ok(u)) => {
                failures = 0;
                u
            }
            Ok(Err(e)) => {
                failures += 1;
                tracing::warn!(error = %e, "telegram getUpdates failed");
                backoff(&ctx, failures, &cancel).await;
                continue;
            }
            Err(_) => {
                failures += 1;
                tracing::warn!("telegram getUpdates timed out");
                backoff(&ctx, failures, &cancel).await;
                continue;
            }
        };
        for update in updates {
            offset = offset.max(i32::try_from(update.id.0).unwrap_or(i32::MAX).saturating_add(1));
            handle(&ctx, update).await;
        }
    }
}

async fn backoff(ctx: &BotContext, failures: u32, cancel: &CancellationToken) {
    let delay = ctx
        .settings
        .backoff_base
        .saturating_mul(1 << failures.min(6))
        .min(ctx.settings.backoff_cap);
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = tokio::time::sleep(delay) => {}
    }
}

async fn handle(ctx: &BotContext, update: Update) {
    let result = match update.kind {
        UpdateKind::Message(message) => on_message(ctx, message).await,
        UpdateKind::EditedMessage(message) => on_edited(ctx, message).await,
        UpdateKind::CallbackQuery(query) => on_callback(ctx, query).await,
        _ => Ok(()),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "telegram update not handled");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("telegram: {0}")]
    Telegram(String),
}

async fn on_message(ctx: &BotContext, message: Message) -> Result<(), HandlerError> {
    // Private chats only: the chat id is the user's id.
    if !message.chat.is_private() {
        return Ok(());
    }
    let chat = message.chat.id;
    let Some(usuario) = usuario_by_chat(ctx, chat.0).await? else {
        return link::on_unknown_chat(ctx, chat, message.text().unwrap_or_default()).await;
    };
    if message.location().is_some() {
        return location::on_message(ctx, &usuario, chat, &message).await;
    }
    let text = message.text().unwrap_or_default().trim();
    let (command, argument) = split_command(text);
    match command.as_deref() {
        Some("start") => link::on_start_linked(ctx, &usuario, chat, argument).await,
        Some("ayuda") | Some("help") => say(ctx, chat, &texts::help(usuario.nivel), None).await,
        Some("cancelar") => {
            wizard::clear(ctx, chat.0).await;
            say(ctx, chat, texts::CANCELLED, None).await
        }
        Some("crear") => wizard::start(ctx, chat).await,
        Some("finalizar") => finish::list(ctx, &usuario, chat, 0, None).await,
        Some("historial") => history::command(ctx, &usuario, chat, argument).await,
        Some("estadisticas") | Some("estadísticas") => stats::command(ctx, &usuario, chat).await,
        Some(_) => say(ctx, chat, texts::UNKNOWN_COMMAND, None).await,
        None => wizard::on_text(ctx, &usuario, chat, text).await,
    }
}

/// Edits matter only for live locations; an unknown chat's edits get no
/// answer (the message itself already got the linking text).
async fn on_edited(ctx: &BotContext, message: Message) -> Result<(), HandlerError> {
    if !message.chat.is_private() || message.location().is_none() {
        return Ok(());
    }
    match usuario_by_chat(ctx, message.chat.id.0).await? {
        Some(usuario) => location::on_edit(ctx, &usuario, &message).await,
        None => Ok(()),
    }
}

async fn on_callback(ctx: &BotContext, query: CallbackQuery) -> Result<(), HandlerError> {
    let chat = ChatId(query.from.id.0 as i64);
    let data = query.data.clone().unwrap_or_default();
    let message_id = query.message.as_ref().map(|m| m.id());
    let usuario = usuario_by_chat(ctx, chat.0).await?;
    let reply = match usuario {
        None => {
            say(ctx, chat, texts::LINK_INSTRUCTIONS, None).await?;
            None
        }
        Some(u) => match data.split(':').next() {
            Some("n") => answer::on_button(ctx, &u, chat, message_id, &data).await?,
            Some("w") => wizard::on_button(ctx, &u, chat, &data).await?,
            Some("f") => finish::on_button(ctx, &u, chat, message_id, &data).await?,
            Some("h") => history::on_button(ctx, &u, chat, message_id, &data).await?,
            _ => Some(texts::STALE_ACTION.to_string()),
        },
    };
    // Every callback is answered, stale ones too (§9).
    let mut answer = ctx.bot.answer_callback_query(query.id);
    if let Some(text) = reply {
        answer = teloxide::payloads::AnswerCallbackQuerySetters::text(answer, text);
    }
    call(ctx, answer.send()).await.map(|_| ())
}

/// `/cmd@bot arg` → (`cmd`, `arg`); plain text → (`None`, text).
fn split_command(text: &str) -> (Option<String>, &str) {
    let Some(rest) = text.strip_prefix('/') else {
        return (None, text);
    };
    let (word, argument) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let command = word.split('@').next().unwrap_or_default().to_lowercase();
    (Some(command), argument.trim())
}

pub async fn usuario_by_chat(ctx: &BotContext, telegram_id: i64) -> Result<Option<Usuario>, sqlx::Error> {
    let row: Option<(i64, i16, String)> = sqlx::query_as(
        "SELECT id, nivel, nombre FROM usuarios WHERE telegram_id = $1 AND deleted_at IS NULL AND verificado",
    )
    .bind(telegram_id)
    .fetch_optional(&ctx.db)
    .await?;
    Ok(row.map(|(id, nivel, nombre)| Usuario { id, nivel, nombre }))
}

/// Sends `html` (already escaped where it interpolates) to `chat`, in parts
/// when it is over Telegram's limit; the keyboard goes with the last part.
pub async fn say(
    ctx: &BotContext,
    chat: ChatId,
    html: &str,
    keyboard: Option<ReplyMarkup>,
) -> Result<(), HandlerError> {
    let mut parts = split_html(html, MAX_MESSAGE_CHARS).into_iter().peekable();
    let mut keyboard = keyboard;
    while let Some(part) = parts.next() {
        wait_for_slot(ctx, chat).await;
        let mut request = ctx.bot.send_message(chat, part).parse_mode(ParseMode::Html);
        if parts.peek().is_none()
            && let Some(k) = keyboard.take()
        {
            request = request.reply_markup(k);
        }
        call(ctx, request.send()).await?;
    }
    Ok(())
}

/// Replaces a message's text and buttons (the buttons go when `keyboard` is `None`).
pub async fn edit(
    ctx: &BotContext,
    chat: ChatId,
    message_id: teloxide::types::MessageId,
    html: &str,
    keyboard: Option<InlineKeyboardMarkup>,
) -> Result<(), HandlerError> {
    use teloxide::payloads::EditMessageTextSetters;
    wait_for_slot(ctx, chat).await;
    let mut request = ctx
        .bot
        .edit_message_text(chat, message_id, html)
        .parse_mode(ParseMode::Html);
    if let Some(k) = keyboard {
        request = request.reply_markup(k);
    }
    call(ctx, request.send()).await.map(|_| ())
}

/// One Bot API call under `api_timeout`.
pub async fn call<T, E: std::fmt::Display>(
    ctx: &BotContext,
    request: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, HandlerError> {
    match tokio::time::timeout(ctx.settings.api_timeout, request).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(HandlerError::Telegram(e.to_string())),
        Err(_) => Err(HandlerError::Telegram("no answer within telegram.api_timeout".into())),
    }
}

/// Waits until the limiter lets one more message go to `chat`. Bounded: a
/// reply held this long is sent anyway rather than never (Telegram then
/// answers 429 at worst, and the user is waiting for it).
async fn wait_for_slot(ctx: &BotContext, chat: ChatId) {
    let give_up = tokio::time::Instant::now() + ctx.settings.ack_wait;
    while let Verdict::Wait(d) = ctx.limiter.try_acquire(chat.0).await {
        if tokio::time::Instant::now() + d > give_up {
            return;
        }
        tokio::time::sleep(d).await;
    }
}
