//! The seeded usuarios tests act as, with tokens minted for this test's secret.

use anyhow::Context;
use gad_shared::auth::TokenIssuer;
use gad_shared::settings::AuthSettings;
use sqlx::PgPool;

/// A seeded usuario and a valid access token for it.
#[derive(Debug, Clone)]
pub struct SeedUser {
    pub id: i64,
    pub email: String,
    pub nivel: u8,
    pub token: String,
}

/// The fixed logins of the dev profile (domain.md §10).
pub const ADMIN: &str = "admin1@seed.invalid";
pub const SUPERVISOR: &str = "supervisor1@seed.invalid";
pub const EFECTIVO: &str = "efectivo1@seed.invalid";

impl SeedUser {
    /// Looks the usuario up by email and mints a token the services accept.
    pub async fn load(db: &PgPool, auth: &AuthSettings, email: &str) -> anyhow::Result<Self> {
        let (id, nivel): (i64, i16) =
            sqlx::query_as("SELECT id, nivel FROM usuarios WHERE lower(email) = lower($1) AND deleted_at IS NULL")
                .bind(email)
                .fetch_optional(db)
                .await?
                .with_context(|| format!("seeded usuario {email} not found"))?;
        let nivel = u8::try_from(nivel).with_context(|| format!("nivel {nivel} of {email}"))?;
        let (token, _ttl) = TokenIssuer::new(auth)
            .issue(id, nivel)
            .map_err(|e| anyhow::anyhow!("minting a token for {email}: {e}"))?;
        Ok(Self {
            id,
            email: email.to_string(),
            nivel,
            token,
        })
    }
}
