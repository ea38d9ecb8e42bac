//! `/estadisticas` (§9.2): the figures of `GET /api/v1/stats/user/{me}?days=30`,
//! read the same way (the shared cache, or PostgreSQL when it misses).

use gad_shared::stats_cache;
use teloxide::types::ChatId;

use super::{BotContext, HandlerError, Usuario, say};

const DAYS: u32 = 30;

pub async fn command(ctx: &BotContext, usuario: &Usuario, chat: ChatId) -> Result<(), HandlerError> {
    let Some(answer) = stats_cache::load(&ctx.db, &ctx.redis, usuario.id, DAYS, true).await? else {
        return say(ctx, chat, "No se encontraron tus estadísticas.", None).await;
    };
    let s = &answer.stats;
    let text = format!(
        "<b>Tus estadísticas (últimos {} días)</b>\n\
         Total: {}\nFinalizadas: {}\nEn curso: {}\nProgramadas: {}\nPausadas: {}\nCanceladas: {}\n\
         Duración promedio: {:.2} h\nProductividad diaria: {:.2} tareas/día",
        s.period_days,
        s.total,
        s.completadas,
        s.en_progreso,
        s.programadas,
        s.pausadas,
        s.canceladas,
        s.promedio_duracion_horas,
        s.productividad_diaria,
    );
    say(ctx, chat, &text, None).await
}
