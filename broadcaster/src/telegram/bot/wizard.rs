//! `/crear` (§9.2): seven steps, one per message, each answer validated and
//! the same step asked again when it is not valid. The state lives in Redis
//! under the chat, renewed on every step and forgotten after
//! `telegram.wizard_idle`; confirming submits `task.create` as the usuario.

use serde::{Deserialize, Serialize};
use serde_json::json;
use teloxide::types::{
    ChatId, InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, KeyboardMarkup, KeyboardRemove, ReplyMarkup,
};

use super::jobs::{self, Outcome};
use super::{BotContext, HandlerError, Usuario, say, texts};
use crate::telegram::render::escape_html;

const STEPS: u8 = 7;
const SKIP: &str = "Omitir";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Wizard {
    step: u8,
    tipo: Option<String>,
    codigo: Option<String>,
    titulo: Option<String>,
    descripcion: Option<String>,
    ubicacion: Option<(f64, f64)>,
    prioridad: Option<i16>,
}

pub async fn start(ctx: &BotContext, chat: ChatId) -> Result<(), HandlerError> {
    let w = Wizard {
        step: 1,
        ..Wizard::default()
    };
    save(ctx, chat.0, &w).await;
    prompt(ctx, chat, &w).await
}

pub async fn clear(ctx: &BotContext, chat: i64) {
    let Some(mut conn) = ctx.redis.conn().await else {
        return;
    };
    let mut del = redis::cmd("DEL");
    del.arg(key(ctx, chat)).arg(confirm_key(ctx, chat));
    let _ = tokio::time::timeout(ctx.redis_timeout, del.query_async::<()>(&mut conn)).await;
}

/// A typed answer: codigo, titulo, descripcion, or "Omitir".
pub async fn on_text(ctx: &BotContext, _usuario: &Usuario, chat: ChatId, text: &str) -> Result<(), HandlerError> {
    let Some(mut w) = load(ctx, chat.0).await else {
        return say(ctx, chat, texts::NO_WIZARD, None).await;
    };
    let problem = match w.step {
        2 => {
            let codigo = gad_shared::domain::tarea::normalize_codigo(text);
            if !gad_shared::domain::tarea::is_valid_codigo(&codigo) {
                Some("El código debe tener de 3 a 20 caracteres: letras mayúsculas, números, - o _.".to_string())
            } else if codigo_taken(ctx, &codigo).await? {
                Some(format!("Ya existe una tarea con el código {}.", escape_html(&codigo)))
            } else {
                w.codigo = Some(codigo);
                None
            }
        }
        3 => {
            let n = text.chars().count();
            if (5..=200).contains(&n) {
                w.titulo = Some(text.to_string());
                None
            } else {
                Some("El título debe tener entre 5 y 200 caracteres.".to_string())
            }
        }
        4 if text == SKIP => None,
        4 => {
            if text.chars().count() <= 1000 {
                w.descripcion = Some(text.to_string());
                None
            } else {
                Some("La descripción admite hasta 1000 caracteres.".to_string())
            }
        }
        5 if text == SKIP => None,
        5 => Some("Compartí una ubicación o elegí «Omitir».".to_string()),
        _ => Some("Usá los botones del mensaje anterior.".to_string()),
    };
    if let Some(problem) = problem {
        say(ctx, chat, &problem, None).await?;
        return prompt(ctx, chat, &w).await;
    }
    advance(ctx, chat, w).await
}

/// A shared location: the wizard's step 5. `false` when no wizard is at
/// that step (the location is then the unit's position, not the task's).
pub async fn on_location(ctx: &BotContext, chat: ChatId, lat: f64, lng: f64) -> Result<bool, HandlerError> {
    match load(ctx, chat.0).await {
        Some(mut w) if w.step == 5 => {
            w.ubicacion = Some((lat, lng));
            advance(ctx, chat, w).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// `w:<field>:<value>`; returns the text of the callback's answer.
pub async fn on_button(
    ctx: &BotContext,
    usuario: &Usuario,
    chat: ChatId,
    data: &str,
) -> Result<Option<String>, HandlerError> {
    let mut parts = data.splitn(3, ':').skip(1);
    let (field, value) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let Some(mut w) = load(ctx, chat.0).await else {
        return Ok(Some(texts::STALE_ACTION.into()));
    };
    match (w.step, field) {
        (1, "tipo") if tipos(ctx).await?.iter().any(|t| t == value) => {
            w.tipo = Some(value.to_string());
        }
        (4, "desc") if value == "skip" => {}
        (6, "prio") => match value.parse::<i16>() {
            Ok(p) if (1..=5).contains(&p) => w.prioridad = Some(p),
            _ => return Ok(Some(texts::STALE_ACTION.into())),
        },
        (7, "confirm") if value == "no" => {
            clear(ctx, chat.0).await;
            say(ctx, chat, texts::CANCELLED, None).await?;
            return Ok(None);
        }
        (7, "confirm") if value == "yes" => return confirm(ctx, usuario, chat, &w).await,
        _ => return Ok(Some(texts::STALE_ACTION.into())),
    }
    advance(ctx, chat, w).await?;
    Ok(None)
}

async fn advance(ctx: &BotContext, chat: ChatId, mut w: Wizard) -> Result<(), HandlerError> {
    w.step = (w.step + 1).min(STEPS);
    save(ctx, chat.0, &w).await;
    prompt(ctx, chat, &w).await
}

async fn confirm(
    ctx: &BotContext,
    usuario: &Usuario,
    chat: ChatId,
    w: &Wizard,
) -> Result<Option<String>, HandlerError> {
    // Presses while a confirm is being processed are ignored.
    if !claim_confirm(ctx, chat.0).await {
        return Ok(Some("Procesando…".into()));
    }
    let mut payload = json!({
        "codigo": w.codigo, "titulo": w.titulo, "descripcion": w.descripcion, "tipo": w.tipo,
        "prioridad": w.prioridad.unwrap_or(3),
        "inicio_programado": gad_shared::time::format(&chrono::Utc::now()),
        "delegado_usuario_id": usuario.id, "efectivos_asignados": [], "origen": "telegram",
    });
    if let Some((lat, lng)) = w.ubicacion {
        payload["ubicacion_lat"] = json!(lat);
        payload["ubicacion_lon"] = json!(lng);
    }
    let reply = match jobs::run(ctx, usuario.id, "task.create", payload).await {
        Outcome::Done(tarea) => format!(
            "✅ Tarea creada: <b>{}</b> (id {})",
            escape_html(tarea["codigo"].as_str().unwrap_or_default()),
            tarea["id"]
        ),
        Outcome::Refused(message) => format!("No se pudo crear la tarea: {}", escape_html(&message)),
        Outcome::Pending => texts::JOB_TIMEOUT.to_string(),
        Outcome::Unavailable => texts::JOB_UNAVAILABLE.to_string(),
    };
    clear(ctx, chat.0).await;
    say(ctx, chat, &reply, None).await?;
    Ok(None)
}

async fn prompt(ctx: &BotContext, chat: ChatId, w: &Wizard) -> Result<(), HandlerError> {
    let head = format!("Paso {}/{STEPS}", w.step);
    let (text, keyboard) = match w.step {
        1 => {
            let rows = tipos(ctx)
                .await?
                .into_iter()
                .map(|t| vec![InlineKeyboardButton::callback(t.clone(), format!("w:tipo:{t}"))]);
            ("Elegí el tipo de tarea.".to_string(), Some(inline(rows)))
        }
        2 => ("Escribí el código de la tarea.".to_string(), None),
        3 => ("Escribí el título (5 a 200 caracteres).".to_string(), None),
        4 => (
            "Escribí una descripción (hasta 1000 caracteres) o elegí «Omitir».".to_string(),
            Some(inline([vec![InlineKeyboardButton::callback(SKIP, "w:desc:skip")]])),
        ),
        5 => {
            let keyboard = KeyboardMarkup::new([
                vec![KeyboardButton::new("📍 Compartir ubicación").request(teloxide::types::ButtonRequest::Location)],
                vec![KeyboardButton::new(SKIP)],
            ])
            .one_time_keyboard()
            .resize_keyboard();
            (
                "Compartí la ubicación o elegí «Omitir».".to_string(),
                Some(ReplyMarkup::Keyboard(keyboard)),
            )
        }
        6 => {
            let row = (1..=5)
                .map(|p| InlineKeyboardButton::callback(p.to_string(), format!("w:prio:{p}")))
                .collect::<Vec<_>>();
            (
                "Elegí la prioridad (1 baja … 5 crítica).".to_string(),
                Some(inline([row])),
            )
        }
        _ => (
            summary(w),
            Some(inline([vec![
                InlineKeyboardButton::callback("Confirmar", "w:confirm:yes"),
                InlineKeyboardButton::callback("Cancelar", "w:confirm:no"),
            ]])),
        ),
    };
    // Step 6 follows a location keyboard; take it away.
    let keyboard = keyboard.or_else(|| (w.step == 6).then(|| ReplyMarkup::KeyboardRemove(KeyboardRemove::new())));
    say(ctx, chat, &format!("<b>{head}</b>\n{text}"), keyboard).await
}

fn inline<R: IntoIterator<Item = Vec<InlineKeyboardButton>>>(rows: R) -> ReplyMarkup {
    ReplyMarkup::InlineKeyboard(InlineKeyboardMarkup::new(rows))
}

fn summary(w: &Wizard) -> String {
    let v = |o: &Option<String>| escape_html(o.as_deref().unwrap_or("—"));
    let ubicacion = w
        .ubicacion
        .map(|(lat, lng)| format!("{lat:.5}, {lng:.5}"))
        .unwrap_or_else(|| "—".into());
    format!(
        "Revisá la tarea:\nTipo: {}\nCódigo: {}\nTítulo: {}\nDescripción: {}\nUbicación: {}\nPrioridad: {}",
        v(&w.tipo),
        v(&w.codigo),
        v(&w.titulo),
        v(&w.descripcion),
        ubicacion,
        w.prioridad.unwrap_or(3)
    )
}

/// The `tipo_tarea` values a wizard offers: all but `emergencia`.
async fn tipos(ctx: &BotContext) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT t::text FROM unnest(enum_range(NULL::tipo_tarea)) AS t WHERE t::text <> 'emergencia' ORDER BY 1",
    )
    .fetch_all(&ctx.db)
    .await
}

async fn codigo_taken(ctx: &BotContext, codigo: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tareas WHERE codigo = $1 AND deleted_at IS NULL)")
        .bind(codigo)
        .fetch_one(&ctx.db)
        .await
}

fn key(ctx: &BotContext, chat: i64) -> String {
    format!("{}gad:tg:wizard:{chat}", ctx.key_prefix)
}

fn confirm_key(ctx: &BotContext, chat: i64) -> String {
    format!("{}gad:tg:confirming:{chat}", ctx.key_prefix)
}

async fn load(ctx: &BotContext, chat: i64) -> Option<Wizard> {
    let mut conn = ctx.redis.conn().await?;
    let mut get = redis::cmd("GET");
    get.arg(key(ctx, chat));
    let raw: Option<String> = tokio::time::timeout(ctx.redis_timeout, get.query_async(&mut conn))
        .await
        .ok()?
        .ok()?;
    serde_json::from_str(&raw?).ok()
}

/// Saves and renews the idle expiry. With Redis down the wizard cannot keep
/// its state; the next step then finds none and says so.
async fn save(ctx: &BotContext, chat: i64, w: &Wizard) {
    let Some(mut conn) = ctx.redis.conn().await else {
        return;
    };
    let Ok(raw) = serde_json::to_string(w) else {
        return;
    };
    let mut set = redis::cmd("SET");
    set.arg(key(ctx, chat))
        .arg(raw)
        .arg("EX")
        .arg(ctx.settings.wizard_idle.as_secs().max(1));
    let _ = tokio::time::timeout(ctx.redis_timeout, set.query_async::<()>(&mut conn)).await;
}

async fn claim_confirm(ctx: &BotContext, chat: i64) -> bool {
    let Some(mut conn) = ctx.redis.conn().await else {
        return true;
    };
    let mut set = redis::cmd("SET");
    set.arg(confirm_key(ctx, chat)).arg(1).arg("NX").arg("EX").arg(60);
    matches!(
        tokio::time::timeout(ctx.redis_timeout, set.query_async::<Option<String>>(&mut conn)).await,
        Ok(Ok(Some(_)))
    )
}
