//! Location and live-location messages (§5, §9.2): the `efectivo.location`
//! job for the unit of the linked usuario, with `recorded_at` = the
//! message's send date, or its edit date for a live location's updates.
//! The job ignores an update older than the stored position, so updates
//! that reach it out of order cannot move the unit back.

use chrono::{DateTime, Utc};
use serde_json::json;
use teloxide::types::{ChatId, Location, Message};

use super::jobs::{self, Outcome};
use super::{BotContext, HandlerError, Usuario, say, texts, wizard};
use crate::telegram::render::escape_html;

/// Telegram reports `horizontal_accuracy` in 0–1500 m; the job takes 0–10000.
const MAX_ACCURACY_M: f64 = 10_000.0;

/// A new message carrying a location. During the wizard's location step it
/// answers that step instead.
pub async fn on_message(
    ctx: &BotContext,
    usuario: &Usuario,
    chat: ChatId,
    message: &Message,
) -> Result<(), HandlerError> {
    let Some(location) = message.location() else {
        return Ok(());
    };
    if wizard::on_location(ctx, chat, location.latitude, location.longitude).await? {
        return Ok(());
    }
    let Some(efectivo) = efectivo_of(ctx, usuario.id).await? else {
        return say(ctx, chat, texts::NO_UNIT, None).await;
    };
    let payload = payload(efectivo, location, message.date);
    if location.live_period.is_some() {
        // A live location goes on as edits every few seconds: its jobs are
        // not awaited, so the next update is not held back by this one.
        let reply = match jobs::submit(ctx, usuario.id, "efectivo.location", payload).await {
            true => texts::LIVE_LOCATION_RECEIVED,
            false => texts::JOB_UNAVAILABLE,
        };
        return say(ctx, chat, reply, None).await;
    }
    let reply = match jobs::run(ctx, usuario.id, "efectivo.location", payload).await {
        Outcome::Done(_) => texts::LOCATION_RECORDED.to_string(),
        Outcome::Refused(m) => format!("No se pudo registrar la ubicación: {}", escape_html(&m)),
        Outcome::Pending => texts::JOB_TIMEOUT.to_string(),
        Outcome::Unavailable => texts::JOB_UNAVAILABLE.to_string(),
    };
    say(ctx, chat, &reply, None).await
}

/// An edited message: a live location's new position (other edits are
/// ignored). No reply: a live location is edited every few seconds, and a
/// refused update is dropped and logged (§5).
pub async fn on_edit(ctx: &BotContext, usuario: &Usuario, message: &Message) -> Result<(), HandlerError> {
    let Some(location) = message.location() else {
        return Ok(());
    };
    let Some(efectivo) = efectivo_of(ctx, usuario.id).await? else {
        return Ok(());
    };
    let recorded_at = message.edit_date().copied().unwrap_or(message.date);
    if !jobs::submit(
        ctx,
        usuario.id,
        "efectivo.location",
        payload(efectivo, location, recorded_at),
    )
    .await
    {
        tracing::warn!(usuario = usuario.id, "live location update dropped: job not accepted");
    }
    Ok(())
}

fn payload(efectivo: i64, location: &Location, recorded_at: DateTime<Utc>) -> serde_json::Value {
    let accuracy = location
        .horizontal_accuracy
        .filter(|a| a.is_finite() && *a >= 0.0)
        .map(|a| a.min(MAX_ACCURACY_M));
    json!({
        "id": efectivo,
        "lat": location.latitude,
        "lng": location.longitude,
        "accuracy_m": accuracy,
        "recorded_at": gad_shared::time::format(&recorded_at),
    })
}

/// The usuario's own unit, if it has one.
async fn efectivo_of(ctx: &BotContext, usuario: i64) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM efectivos WHERE usuario_id = $1 AND deleted_at IS NULL")
        .bind(usuario)
        .fetch_optional(&ctx.db)
        .await
}
