//! Who submitted a job, read from PostgreSQL at run time: the worker checks
//! ownership and nivel against the current row, not the token's claims.

use super::Tx;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub usuario_id: i64,
    pub nivel: i16,
    /// The actor's efectivo, if it has one.
    pub efectivo_id: Option<i64>,
}

impl Actor {
    pub fn is_supervisor(&self) -> bool {
        self.nivel >= 2
    }
    pub fn is_admin(&self) -> bool {
        self.nivel >= 3
    }
}

/// `None` when the usuario does not exist, is deleted or is not verified.
pub async fn load(tx: &mut Tx<'_>, usuario_id: i64) -> Result<Option<Actor>, sqlx::Error> {
    let row: Option<(i64, i16, Option<i64>)> = sqlx::query_as(
        "SELECT u.id, u.nivel, e.id FROM usuarios u
         LEFT JOIN efectivos e ON e.usuario_id = u.id AND e.deleted_at IS NULL
         WHERE u.id = $1 AND u.deleted_at IS NULL AND u.verificado",
    )
    .bind(usuario_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|(usuario_id, nivel, efectivo_id)| Actor {
        usuario_id,
        nivel,
        efectivo_id,
    }))
}
