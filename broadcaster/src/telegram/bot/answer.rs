//! Aceptar / Rechazar on an assignment notification (`n:<id>:a|r`): the
//! answer is the `task.respond` job, as the assignee; the message is then
//! edited to show the answer, which removes its buttons (§9.3).

use serde_json::{Value, json};
use teloxide::types::{ChatId, MessageId};
use uuid::Uuid;

use super::jobs::{self, Outcome};
use super::{BotContext, HandlerError, Usuario, edit, texts};
use crate::telegram::render::{escape_html, render};

pub async fn on_button(
    ctx: &BotContext,
    usuario: &Usuario,
    chat: ChatId,
    message: Option<MessageId>,
    data: &str,
) -> Result<Option<String>, HandlerError> {
    let mut parts = data.splitn(3, ':').skip(1);
    let id = parts.next().and_then(|p| Uuid::parse_str(p).ok());
    let respuesta = match parts.next() {
        Some("a") => "aceptada",
        Some("r") => "rechazada",
        _ => return Ok(Some(texts::STALE_ACTION.into())),
    };
    let Some(id) = id else {
        return Ok(Some(texts::STALE_ACTION.into()));
    };
    let row: Option<(Option<i64>, Value)> = sqlx::query_as(
        "SELECT tarea_id, payload FROM notifications
          WHERE id = $1 AND recipient_usuario_id = $2 AND acked_at IS NULL
            AND kind IN ('task_assigned', 'emergency_assigned')",
    )
    .bind(id)
    .bind(usuario.id)
    .fetch_optional(&ctx.db)
    .await?;
    let Some((Some(tarea_id), payload)) = row else {
        return Ok(Some(texts::STALE_ACTION.into()));
    };
    let outcome = jobs::run(
        ctx,
        usuario.id,
        "task.respond",
        json!({ "tarea_id": tarea_id, "respuesta": respuesta, "motivo": null }),
    )
    .await;
    let (line, toast) = match outcome {
        Outcome::Done(_) if respuesta == "aceptada" => ("✅ Aceptada".to_string(), "Aceptada"),
        Outcome::Done(_) => ("❌ Rechazada".to_string(), "Rechazada"),
        Outcome::Refused(m) => (
            format!("No se pudo responder: {}", escape_html(&m)),
            "No se pudo responder",
        ),
        Outcome::Pending => (texts::JOB_TIMEOUT.to_string(), "En proceso"),
        Outcome::Unavailable => return Ok(Some(texts::JOB_UNAVAILABLE.into())),
    };
    if let Some(message) = message {
        let original = render(id, &payload).html;
        edit(ctx, chat, message, &format!("{original}\n\n<b>{line}</b>"), None).await?;
    }
    Ok(Some(toast.to_string()))
}
