//! `auth`: the keys that verify JWTs, and how long idempotency keys are remembered.

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};

/// Authentication: JWTs (HS256 and/or RS256) and API keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Shared secret for HS256 tokens; empty disables HS256.
    pub jwt_hs256_secret: Secret,
    /// PEM public key for RS256 tokens; empty disables RS256.
    pub jwt_rs256_public_key_pem: Secret,
    /// Required `iss` claim.
    pub jwt_issuer: String,
    /// Required `aud` claim.
    pub jwt_audience: String,
    /// How long an `Idempotency-Key` is remembered.
    pub idempotency_ttl_secs: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_hs256_secret: Secret::default(),
            jwt_rs256_public_key_pem: Secret::default(),
            jwt_issuer: "cqrs-backend".to_owned(),
            jwt_audience: "cqrs-backend".to_owned(),
            idempotency_ttl_secs: 24 * 3600,
        }
    }
}

impl AuthSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let secret = self.jwt_hs256_secret.expose();
        if !secret.is_empty() && secret.len() < 32 {
            return Err(ConfigError::invalid(
                "auth.jwt_hs256_secret",
                "must be at least 32 bytes",
            ));
        }
        let pem = self.jwt_rs256_public_key_pem.expose();
        if !pem.is_empty() && jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).is_err() {
            return Err(ConfigError::invalid(
                "auth.jwt_rs256_public_key_pem",
                "is not a PEM RSA public key",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_hs256_secret_is_named_but_not_printed() {
        let auth = AuthSettings {
            jwt_hs256_secret: Secret::new("hunter2"),
            ..AuthSettings::default()
        };
        let error = auth.validate().expect_err("refused").to_string();
        assert!(error.contains("auth.jwt_hs256_secret"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}
