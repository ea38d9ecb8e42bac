//! `/historial [todas|activas|finalizadas]` (§9.2): the usuario's own tasks
//! (delegated to it or assigned to its unit; nivel ≥ 2 also those it
//! created), newest first, ten per page, with ◀ ▶ and Cerrar buttons whose
//! callback data is `h:<filtro>:<página>` (`h:<filtro>:c` closes).

use teloxide::types::{ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId, ReplyMarkup};

use super::{BotContext, HandlerError, Usuario, edit, say, texts};
use crate::telegram::render::escape_html;

const PAGE: i64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    Todas,
    Activas,
    Finalizadas,
}

impl Filter {
    fn parse(word: &str) -> Option<Self> {
        match word {
            "" | "todas" => Some(Self::Todas),
            "activas" => Some(Self::Activas),
            "finalizadas" => Some(Self::Finalizadas),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Todas => "todas",
            Self::Activas => "activas",
            Self::Finalizadas => "finalizadas",
        }
    }

    fn estados(self) -> &'static [&'static str] {
        match self {
            Self::Todas => &["programada", "en_curso", "pausada", "finalizada", "cancelada"],
            Self::Activas => &["programada", "en_curso", "pausada"],
            Self::Finalizadas => &["finalizada"],
        }
    }
}

struct Row {
    codigo: String,
    titulo: String,
    estado: String,
    /// `created_at` in the agency's time zone, formatted by PostgreSQL.
    creada: String,
    /// Rows matching the filter, on every page.
    total: i64,
}

/// The command; `argument` is the filter, `todas` when absent.
pub async fn command(ctx: &BotContext, usuario: &Usuario, chat: ChatId, argument: &str) -> Result<(), HandlerError> {
    match Filter::parse(&argument.to_lowercase()) {
        Some(filter) => show(ctx, usuario, chat, filter, 0, None).await,
        None => say(ctx, chat, texts::HISTORY_USAGE, None).await,
    }
}

/// `h:<filtro>:<página>` or `h:<filtro>:c`; returns the callback's answer text.
pub async fn on_button(
    ctx: &BotContext,
    usuario: &Usuario,
    chat: ChatId,
    message: Option<MessageId>,
    data: &str,
) -> Result<Option<String>, HandlerError> {
    let mut parts = data.splitn(3, ':').skip(1);
    let filter = parts.next().and_then(Filter::parse);
    let (Some(filter), Some(message)) = (filter, message) else {
        return Ok(Some(texts::STALE_ACTION.into()));
    };
    match parts.next() {
        Some("c") => edit(ctx, chat, message, texts::HISTORY_CLOSED, None).await?,
        Some(page) => match page.parse::<i64>() {
            Ok(page) if page >= 0 => show(ctx, usuario, chat, filter, page, Some(message)).await?,
            _ => return Ok(Some(texts::STALE_ACTION.into())),
        },
        None => return Ok(Some(texts::STALE_ACTION.into())),
    }
    Ok(None)
}

/// Page `page` of the list; edits `message` in place when given.
async fn show(
    ctx: &BotContext,
    usuario: &Usuario,
    chat: ChatId,
    filter: Filter,
    page: i64,
    message: Option<MessageId>,
) -> Result<(), HandlerError> {
    let rows = rows(ctx, usuario, filter, page).await?;
    let Some(total) = rows.first().map(|r| r.total) else {
        let text = format!("No tenés tareas ({}).", filter.name());
        return match message {
            Some(m) => edit(ctx, chat, m, &text, None).await,
            None => say(ctx, chat, &text, None).await,
        };
    };
    let pages = (total + PAGE - 1) / PAGE;
    let mut text = format!(
        "<b>Historial ({})</b> — página {} de {pages}, {total} tareas\n",
        filter.name(),
        page + 1
    );
    for r in &rows {
        text.push_str(&format!(
            "\n• <b>{}</b> — {}\n   {} · {}",
            escape_html(&r.codigo),
            escape_html(&r.titulo),
            escape_html(&r.estado),
            escape_html(&r.creada)
        ));
    }
    let name = filter.name();
    let mut nav = Vec::new();
    if page > 0 {
        nav.push(InlineKeyboardButton::callback("◀", format!("h:{name}:{}", page - 1)));
    }
    if page + 1 < pages {
        nav.push(InlineKeyboardButton::callback("▶", format!("h:{name}:{}", page + 1)));
    }
    let mut keyboard = vec![nav];
    keyboard.push(vec![InlineKeyboardButton::callback("Cerrar", format!("h:{name}:c"))]);
    keyboard.retain(|row| !row.is_empty());
    let markup = InlineKeyboardMarkup::new(keyboard);
    match message {
        Some(m) => edit(ctx, chat, m, &text, Some(markup)).await,
        None => say(ctx, chat, &text, Some(ReplyMarkup::InlineKeyboard(markup))).await,
    }
}

async fn rows(ctx: &BotContext, usuario: &Usuario, filter: Filter, page: i64) -> Result<Vec<Row>, sqlx::Error> {
    let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT t.codigo, t.titulo, t.estado::text,
                to_char(t.created_at AT TIME ZONE $3, 'DD/MM/YYYY HH24:MI'), count(*) OVER ()
           FROM tareas t
          WHERE t.deleted_at IS NULL AND t.estado::text = ANY($2)
            AND (t.delegado_usuario_id = $1
                 OR ($4 AND t.creado_por_usuario_id = $1)
                 OR EXISTS (SELECT 1 FROM tarea_efectivos te
                              JOIN efectivos e ON e.id = te.efectivo_id AND e.deleted_at IS NULL
                             WHERE te.tarea_id = t.id AND e.usuario_id = $1))
          ORDER BY t.created_at DESC, t.id DESC
          LIMIT $5 OFFSET $6",
    )
    .bind(usuario.id)
    .bind(filter.estados())
    .bind(&ctx.settings.time_zone)
    .bind(usuario.nivel >= 2)
    .bind(PAGE)
    .bind(page.saturating_mul(PAGE))
    .fetch_all(&ctx.db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(codigo, titulo, estado, creada, total)| Row {
            codigo,
            titulo,
            estado,
            creada,
            total,
        })
        .collect())
}
