//! Linking a chat to a usuario with a one-time code (§9.1). Codes are issued
//! by ingress (`POST /api/v1/telegram/link-code`), stored hashed; here the
//! code a chat sends is hashed the same way, matched to an unused unexpired
//! code, and the code is spent in the same transaction that links.

use sha2::{Digest, Sha256};
use teloxide::types::ChatId;

use super::{BotContext, HandlerError, Usuario, say, texts};

/// Wrong codes a chat may send per hour before linking is blocked for it.
const MAX_BAD_CODES: i64 = 5;
const BAD_CODE_WINDOW_S: i64 = 3600;

/// The stored hash of a code: SHA-256 of the code trimmed and lower-cased,
/// exactly as ingress hashes it when it issues the code.
pub fn code_hash(code: &str) -> Vec<u8> {
    Sha256::digest(code.trim().to_ascii_lowercase().as_bytes()).to_vec()
}

/// Anything from a chat no usuario is linked to: a `/start CODE` links it;
/// everything else gets the linking text and nothing more.
pub async fn on_unknown_chat(ctx: &BotContext, chat: ChatId, text: &str) -> Result<(), HandlerError> {
    let code = text
        .trim()
        .strip_prefix("/start")
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let Some(code) = code else {
        return say(ctx, chat, texts::LINK_INSTRUCTIONS, None).await;
    };
    if bad_codes(ctx, chat.0).await >= MAX_BAD_CODES {
        return say(ctx, chat, texts::LINK_BLOCKED, None).await;
    }
    match link(ctx, chat.0, code).await? {
        Some(nombre) => say(ctx, chat, &texts::greeting(&nombre), None).await,
        None => {
            count_bad_code(ctx, chat.0).await;
            say(ctx, chat, texts::LINK_FAILED, None).await
        }
    }
}

/// `/start [code]` from a linked chat: the greeting, or an error for a code
/// of another usuario (nothing changes).
pub async fn on_start_linked(
    ctx: &BotContext,
    usuario: &Usuario,
    chat: ChatId,
    code: &str,
) -> Result<(), HandlerError> {
    if !code.is_empty() {
        let owner: Option<i64> = sqlx::query_scalar(
            "SELECT usuario_id FROM telegram_links WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now()",
        )
        .bind(code_hash(code))
        .fetch_optional(&ctx.db)
        .await?;
        if owner.is_some_and(|o| o != usuario.id) {
            return say(ctx, chat, texts::LINK_OTHER_ACCOUNT, None).await;
        }
    }
    say(ctx, chat, &texts::greeting(&usuario.nombre), None).await
}

/// Spends the code and links; the usuario's name, or `None` for a bad code.
async fn link(ctx: &BotContext, telegram_id: i64, code: &str) -> Result<Option<String>, sqlx::Error> {
    let mut tx = ctx.db.begin().await?;
    let usuario: Option<i64> = sqlx::query_scalar(
        "UPDATE telegram_links SET used_at = now(), used_by_telegram_id = $2
          WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now()
         RETURNING usuario_id",
    )
    .bind(code_hash(code))
    .bind(telegram_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(usuario) = usuario else {
        return Ok(None);
    };
    let nombre: Option<String> = sqlx::query_scalar(
        "UPDATE usuarios SET telegram_id = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING nombre",
    )
    .bind(usuario)
    .bind(telegram_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(nombre) = nombre else {
        return Ok(None);
    };
    sqlx::query(
        "INSERT INTO audit_log (actor_usuario_id, actor_telegram_id, action, resource_type, resource_id)
         VALUES ($1, $2, 'telegram_linked', 'usuario', $1::text)",
    )
    .bind(usuario)
    .bind(telegram_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(nombre))
}

fn bad_code_key(ctx: &BotContext, chat: i64) -> String {
    format!("{}gad:tg:badcode:{chat}", ctx.key_prefix)
}

async fn bad_codes(ctx: &BotContext, chat: i64) -> i64 {
    let Some(mut conn) = ctx.redis.conn().await else {
        return 0;
    };
    let mut get = redis::cmd("GET");
    get.arg(bad_code_key(ctx, chat));
    match tokio::time::timeout(ctx.redis_timeout, get.query_async::<Option<i64>>(&mut conn)).await {
        Ok(Ok(n)) => n.unwrap_or(0),
        _ => 0,
    }
}

async fn count_bad_code(ctx: &BotContext, chat: i64) {
    let Some(mut conn) = ctx.redis.conn().await else {
        return;
    };
    let key = bad_code_key(ctx, chat);
    let mut pipe = redis::pipe();
    pipe.cmd("INCR").arg(&key).ignore();
    pipe.cmd("EXPIRE").arg(&key).arg(BAD_CODE_WINDOW_S).arg("NX").ignore();
    let _ = tokio::time::timeout(ctx.redis_timeout, pipe.query_async::<()>(&mut conn)).await;
}
