//! What every usuario job does first and last: the transaction with its job
//! guard and actor, the target row under lock, and the commit.

use gad_shared::domain::usuario::{COLUMNS, Usuario};

use super::super::HandlerError;
use crate::effects::Tx;

pub use crate::jobs::business::{Begun, begin, finish, payload};

/// A live usuario, with its password hash, locked for the rest of the job.
#[derive(Debug, sqlx::FromRow)]
pub struct Target {
    #[sqlx(flatten)]
    pub usuario: Usuario,
    pub hashed_password: String,
}

pub async fn lock(tx: &mut Tx<'_>, usuario_id: i64) -> Result<Target, HandlerError> {
    let sql =
        format!("SELECT {COLUMNS}, hashed_password FROM usuarios WHERE id = $1 AND deleted_at IS NULL FOR UPDATE");
    sqlx::query_as::<_, Target>(sqlx::AssertSqlSafe(sql))
        .bind(usuario_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| HandlerError::not_found("usuario"))
}

/// Password hashing and checking are slow on purpose: off the async runtime.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, HandlerError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HandlerError::rejected(500, "internal_error", format!("password work failed: {e}")))
}

pub async fn hash_password(password: String) -> Result<String, HandlerError> {
    blocking(move || gad_shared::password::hash(&password))
        .await?
        .map_err(|e| HandlerError::rejected(500, "internal_error", e.to_string()))
}
