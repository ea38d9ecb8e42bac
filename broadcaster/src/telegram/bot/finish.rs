//! `/finalizar` (§9.2): the usuario's own `en_curso` and `pausada` tasks, five
//! per page, then a distinct confirm; confirming submits `task.transition`
//! `finish` (a `pausada` task is resumed first: two jobs, two historial rows).

use serde_json::json;
use teloxide::types::{ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId, ReplyMarkup};

use super::jobs::{self, Outcome};
use super::{BotContext, HandlerError, Usuario, edit, say, texts};
use crate::telegram::render::escape_html;

const PAGE: i64 = 5;

struct Own {
    id: i64,
    codigo: String,
    titulo: String,
    estado: String,
}

/// Page `page` of the list; edits `message` in place when given (◀ ▶).
pub async fn list(
    ctx: &BotContext,
    usuario: &Usuario,
    chat: ChatId,
    page: i64,
    message: Option<MessageId>,
) -> Result<(), HandlerError> {
    let rows = own_running(ctx, usuario.id, page).await?;
    if rows.is_empty() && page == 0 {
        return say(ctx, chat, "No tenés tareas en curso ni pausadas.", None).await;
    }
    let more = rows.len() as i64 > PAGE;
    let mut keyboard: Vec<Vec<InlineKeyboardButton>> = rows
        .iter()
        .take(PAGE as usize)
        .map(|t| {
            let label = format!(
                "{} — {}{}",
                t.codigo,
                t.titulo,
                if t.estado == "pausada" { " (pausada)" } else { "" }
            );
            vec![InlineKeyboardButton::callback(label, format!("f:{}:pick", t.id))]
        })
        .collect();
    let mut nav = Vec::new();
    if page > 0 {
        nav.push(InlineKeyboardButton::callback("◀", format!("f:0:p{}", page - 1)));
    }
    if more {
        nav.push(InlineKeyboardButton::callback("▶", format!("f:0:p{}", page + 1)));
    }
    if !nav.is_empty() {
        keyboard.push(nav);
    }
    let text = format!("Elegí la tarea a finalizar (página {}):", page + 1);
    let markup = InlineKeyboardMarkup::new(keyboard);
    match message {
        Some(m) => edit(ctx, chat, m, &text, Some(markup)).await,
        None => say(ctx, chat, &text, Some(ReplyMarkup::InlineKeyboard(markup))).await,
    }
}

/// `f:<tarea_id>:<op>`; returns the text of the callback's answer.
pub async fn on_button(
    ctx: &BotContext,
    usuario: &Usuario,
    chat: ChatId,
    message: Option<MessageId>,
    data: &str,
) -> Result<Option<String>, HandlerError> {
    let mut parts = data.splitn(3, ':').skip(1);
    let id: i64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let op = parts.next().unwrap_or_default();
    if let Some(page) = op.strip_prefix('p').and_then(|p| p.parse::<i64>().ok()) {
        list(ctx, usuario, chat, page.max(0), message).await?;
        return Ok(None);
    }
    let Some(task) = own_task(ctx, usuario.id, id).await? else {
        return Ok(Some(texts::STALE_ACTION.into()));
    };
    let Some(message) = message else {
        return Ok(Some(texts::STALE_ACTION.into()));
    };
    let name = format!("<b>{}</b> — {}", escape_html(&task.codigo), escape_html(&task.titulo));
    match op {
        "pick" => {
            let confirm = InlineKeyboardMarkup::new([vec![
                InlineKeyboardButton::callback("Sí, finalizar", format!("f:{id}:yes")),
                InlineKeyboardButton::callback("No", format!("f:{id}:no")),
            ]]);
            edit(ctx, chat, message, &format!("¿Finalizar {name}?"), Some(confirm)).await?;
        }
        "no" => edit(ctx, chat, message, &format!("No se finalizó {name}."), None).await?,
        "yes" => {
            // The buttons go first, so a second press finds nothing to press.
            edit(ctx, chat, message, &format!("Finalizando {name}…"), None).await?;
            let outcome = finish(ctx, usuario.id, &task).await;
            let text = match outcome {
                Outcome::Done(_) => format!("✅ Tarea finalizada: {name}"),
                Outcome::Refused(m) => format!("No se pudo finalizar {name}: {}", escape_html(&m)),
                Outcome::Pending => texts::JOB_TIMEOUT.to_string(),
                Outcome::Unavailable => texts::JOB_UNAVAILABLE.to_string(),
            };
            edit(ctx, chat, message, &text, None).await?;
        }
        _ => return Ok(Some(texts::STALE_ACTION.into())),
    }
    Ok(None)
}

async fn finish(ctx: &BotContext, usuario: i64, task: &Own) -> Outcome {
    let transition = |accion: &str| json!({ "tarea_id": task.id, "accion": accion, "motivo": null });
    if task.estado == "pausada" {
        match jobs::run(ctx, usuario, "task.transition", transition("resume")).await {
            Outcome::Done(_) => {}
            other => return other,
        }
    }
    jobs::run(ctx, usuario, "task.transition", transition("finish")).await
}

/// Own tasks (delegated to the usuario, or assigned to its unit) still
/// running, followed by `$tail`.
macro_rules! own_running {
    ($tail:literal) => {
        concat!(
            "SELECT t.id, t.codigo, t.titulo, t.estado::text FROM tareas t
              WHERE t.deleted_at IS NULL AND t.estado IN ('en_curso', 'pausada')
                AND (t.delegado_usuario_id = $1 OR EXISTS (SELECT 1 FROM tarea_efectivos te
                      JOIN efectivos e ON e.id = te.efectivo_id AND e.deleted_at IS NULL
                     WHERE te.tarea_id = t.id AND e.usuario_id = $1)) ",
            $tail
        )
    };
}

async fn own_running(ctx: &BotContext, usuario: i64, page: i64) -> Result<Vec<Own>, sqlx::Error> {
    let rows: Vec<(i64, String, String, String)> =
        sqlx::query_as(own_running!("ORDER BY t.id DESC LIMIT $2 OFFSET $3"))
            .bind(usuario)
            .bind(PAGE + 1)
            .bind(page * PAGE)
            .fetch_all(&ctx.db)
            .await?;
    Ok(rows.into_iter().map(own).collect())
}

async fn own_task(ctx: &BotContext, usuario: i64, id: i64) -> Result<Option<Own>, sqlx::Error> {
    let row: Option<(i64, String, String, String)> = sqlx::query_as(own_running!("AND t.id = $2"))
        .bind(usuario)
        .bind(id)
        .fetch_optional(&ctx.db)
        .await?;
    Ok(row.map(own))
}

fn own((id, codigo, titulo, estado): (i64, String, String, String)) -> Own {
    Own {
        id,
        codigo,
        titulo,
        estado,
    }
}
