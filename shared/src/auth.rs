//! Access tokens: one issuer and one verifier sharing a single claims type, so
//! the verifier accepts exactly what the issuer produces (the original system
//! rejected its own tokens). Revocation is checked against an in-memory mirror
//! of a NATS key-value bucket, so verifying a token needs neither PostgreSQL
//! nor Redis, nor a network round trip per request.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::revocation::{RevocationError, Revocations, UserRevocation};
use crate::settings::AuthSettings;

/// The claims of `domain.md` §6.2, written and read by the same type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub nivel: u8,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    pub iss: String,
}

/// The authenticated usuario behind a request or a WebSocket connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: i64,
    pub nivel: u8,
    pub jti: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl Caller {
    pub fn is_supervisor(&self) -> bool {
        self.nivel >= 2
    }
    pub fn is_admin(&self) -> bool {
        self.nivel >= 3
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required")]
    Missing,
    #[error("invalid token")]
    Invalid,
    #[error("token expired")]
    Expired,
    #[error("token revoked")]
    Revoked,
}

impl AuthError {
    /// The §7 error code.
    pub fn code(self) -> &'static str {
        match self {
            AuthError::Missing => "not_authenticated",
            AuthError::Invalid | AuthError::Revoked => "invalid_token",
            AuthError::Expired => "token_expired",
        }
    }
}

#[derive(Clone)]
pub struct TokenIssuer {
    key: EncodingKey,
    issuer: String,
    ttl: Duration,
}

impl TokenIssuer {
    pub fn new(settings: &AuthSettings) -> Self {
        Self {
            key: EncodingKey::from_secret(settings.jwt_secret.as_bytes()),
            issuer: settings.issuer().to_string(),
            ttl: settings.token_ttl(),
        }
    }

    /// Returns the token and its lifetime in seconds.
    pub fn issue(&self, user_id: i64, nivel: u8) -> Result<(String, u64), AuthError> {
        let now = chrono::Utc::now().timestamp();
        let ttl = self.ttl.as_secs();
        let claims = Claims {
            sub: user_id.to_string(),
            nivel,
            iat: now,
            nbf: now,
            exp: now + ttl as i64,
            jti: Uuid::new_v4().to_string(),
            iss: self.issuer.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .map(|t| (t, ttl))
            .map_err(|_| AuthError::Invalid)
    }
}

#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
    revocations: Revocations,
}

impl TokenVerifier {
    pub fn new(settings: &AuthSettings, revocations: Revocations) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[settings.issuer()]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "sub", "iss"]);
        validation.validate_nbf = true;
        // Small skew allowance between the issuing and verifying nodes' clocks.
        validation.leeway = 5;
        Self {
            key: DecodingKey::from_secret(settings.jwt_secret.as_bytes()),
            validation,
            revocations,
        }
    }

    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
            _ => AuthError::Invalid,
        })?;
        let c = data.claims;
        let user_id: i64 = c.sub.parse().map_err(|_| AuthError::Invalid)?;
        if !(1..=3).contains(&c.nivel) {
            return Err(AuthError::Invalid);
        }
        if self.revocations.is_revoked(user_id, c.iat, &c.jti) {
            return Err(AuthError::Revoked);
        }
        Ok(Caller {
            user_id,
            nivel: c.nivel,
            jti: c.jti,
            issued_at: c.iat,
            expires_at: c.exp,
        })
    }

    /// Whether a caller verified earlier has been revoked since (logout,
    /// `tokens_validos_desde`): the revocation half of [`Self::verify`]
    /// without decoding the token again, for long-lived connections that
    /// ask every few seconds.
    pub fn is_revoked(&self, caller: &Caller) -> bool {
        self.revocations
            .is_revoked(caller.user_id, caller.issued_at, &caller.jti)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AuthSettings {
        AuthSettings {
            jwt_secret: "x".repeat(40),
            issuer: None,
            token_ttl: None,
        }
    }

    #[test]
    fn issued_tokens_verify_with_identical_claims() {
        let s = settings();
        let (token, ttl) = TokenIssuer::new(&s).issue(42, 2).unwrap_or_default();
        assert_eq!(ttl, 1800);
        let caller = TokenVerifier::new(&s, Revocations::default()).verify(&token);
        assert!(
            matches!(
                caller,
                Ok(Caller {
                    user_id: 42,
                    nivel: 2,
                    ..
                })
            ),
            "{caller:?}"
        );
    }

    #[test]
    fn wrong_key_wrong_issuer_and_garbage_are_invalid() {
        let s = settings();
        let (token, _) = TokenIssuer::new(&s).issue(1, 1).unwrap_or_default();
        let other = AuthSettings {
            jwt_secret: "y".repeat(40),
            ..settings()
        };
        assert_eq!(
            TokenVerifier::new(&other, Revocations::default()).verify(&token),
            Err(AuthError::Invalid)
        );
        let other_iss = AuthSettings {
            issuer: Some("elsewhere".into()),
            ..settings()
        };
        assert_eq!(
            TokenVerifier::new(&other_iss, Revocations::default()).verify(&token),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            TokenVerifier::new(&s, Revocations::default()).verify("a.b.c"),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn expired_tokens_are_reported_as_expired() {
        let s = settings();
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: "1".into(),
            nivel: 1,
            iat: now - 100,
            nbf: now - 100,
            exp: now - 50,
            jti: "j".into(),
            iss: "gad".into(),
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(s.jwt_secret.as_bytes()),
        )
        .unwrap_or_default();
        assert_eq!(
            TokenVerifier::new(&s, Revocations::default()).verify(&token),
            Err(AuthError::Expired)
        );
    }

    #[test]
    fn revocation_by_user_bump_and_by_jti() {
        let s = settings();
        let rev = Revocations::default();
        let verifier = TokenVerifier::new(&s, rev.clone());
        let (token, _) = TokenIssuer::new(&s).issue(7, 1).unwrap_or_default();
        let jti = verifier.verify(&token).map(|c| c.jti).unwrap_or_default();
        let future = chrono::Utc::now().timestamp() + 10;
        rev.apply(
            &Revocations::user_key(7),
            Some(format!("{{\"valid_since\":{future}}}").as_bytes()),
        );
        assert_eq!(verifier.verify(&token), Err(AuthError::Revoked));
        rev.apply(&Revocations::user_key(7), None);
        assert!(verifier.verify(&token).is_ok());
        rev.apply(&Revocations::jti_key(&jti), Some(b"1"));
        assert_eq!(verifier.verify(&token), Err(AuthError::Revoked));
    }
}
