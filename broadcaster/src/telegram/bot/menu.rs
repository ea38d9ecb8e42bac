//! The §9.2 commands as Telegram's command menu: registered with
//! `setMyCommands` when the bot starts, so clients offer them as the user
//! types `/`. The handlers themselves are matched in [`super::on_message`].

use teloxide::prelude::Requester;
use teloxide::requests::Request;
use teloxide::types::BotCommand;

use super::{BotContext, call};

/// Every command a linked usuario may send, with its menu description.
pub const COMMANDS: [(&str, &str); 8] = [
    ("start", "Vincular la cuenta o ver el menú"),
    ("ayuda", "Comandos disponibles"),
    ("help", "Comandos disponibles"),
    ("crear", "Nueva tarea"),
    ("finalizar", "Finalizar una tarea en curso"),
    ("historial", "Tus tareas: todas, activas o finalizadas"),
    ("estadisticas", "Tus números de los últimos 30 días"),
    ("cancelar", "Salir de la operación en curso"),
];

/// One attempt: a menu that failed to register leaves every command working.
pub async fn register(ctx: &BotContext) {
    let commands = COMMANDS.iter().map(|(c, d)| BotCommand::new(*c, *d));
    if let Err(e) = call(ctx, ctx.bot.set_my_commands(commands).send()).await {
        tracing::warn!(error = %e, "telegram setMyCommands failed; the command menu is not shown");
    }
}
