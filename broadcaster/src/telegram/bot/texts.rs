//! What the bot says (Spanish, HTML parse mode). Values interpolated into
//! these texts are escaped by the caller (`render::escape_html`).

/// The only thing an unknown chat ever gets (§9.1).
pub const LINK_INSTRUCTIONS: &str = "Este chat no está vinculado a una cuenta de GAD.\n\
Para vincularlo, pedí un código en la aplicación (Telegram → Vincular) y enviá\n\
<code>/start CÓDIGO</code>";

pub const LINK_FAILED: &str = "El código no es válido o ya venció. Pedí uno nuevo en la aplicación.";
pub const LINK_BLOCKED: &str = "Demasiados códigos incorrectos. Probá de nuevo en una hora.";
pub const LINK_OTHER_ACCOUNT: &str = "Esta cuenta de Telegram ya está vinculada a otro usuario. No se cambió nada.";
pub const CANCELLED: &str = "Operación cancelada.";
pub const UNKNOWN_COMMAND: &str = "No entendí. Enviá /ayuda para ver los comandos.";
pub const STALE_ACTION: &str = "Esta acción ya no está vigente";
pub const NO_WIZARD: &str = "No hay ninguna operación en curso. Enviá /ayuda para ver los comandos.";
pub const JOB_TIMEOUT: &str = "La operación sigue en proceso; te avisaremos cuando termine.";
pub const NO_UNIT: &str = "Tu usuario no tiene una unidad (efectivo) asociada: la ubicación no se registró.";
pub const LOCATION_RECORDED: &str = "📍 Ubicación registrada.";
pub const LIVE_LOCATION_RECEIVED: &str = "📍 Ubicación en vivo recibida: se actualizará mientras la compartas.";
pub const HISTORY_USAGE: &str = "Uso: /historial [todas|activas|finalizadas]";
pub const HISTORY_CLOSED: &str = "Historial cerrado.";
pub const JOB_UNAVAILABLE: &str = "El sistema no está disponible en este momento. Probá de nuevo en unos minutos.";

pub fn greeting(nombre: &str) -> String {
    format!(
        "¡Hola, {}! Tu cuenta está vinculada.\n\n{}",
        super::super::render::escape_html(nombre),
        MENU
    )
}

const MENU: &str = "/crear — nueva tarea\n\
/finalizar — finalizar una tarea en curso\n\
/historial [todas|activas|finalizadas] — tus tareas\n\
/estadisticas — tus números de los últimos 30 días\n\
/cancelar — salir de la operación en curso\n\
/ayuda — comandos\n\
📍 Compartí tu ubicación (o tu ubicación en vivo) para actualizar la de tu unidad.";

pub fn help(nivel: i16) -> String {
    let scope = if nivel >= 2 {
        "Como supervisor, ves también las tareas que creaste."
    } else {
        "Las tareas que creás quedan delegadas a vos."
    };
    format!("Comandos disponibles:\n{MENU}\n\n{scope}")
}
