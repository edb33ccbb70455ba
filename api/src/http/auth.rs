//! Authentication: who is calling, from a JWT or an API key, checked against the current state
//! of the user or key and of its tenant (so a deactivated user, a revoked key or a suspended
//! tenant is refused at once, by every process), and the settings the tenant is served with.
//!
//! - `Authorization: Bearer <JWT>`: HS256 and/or RS256 as configured; `iss`, `aud` and `exp`
//!   checked, and `nbf` when present; `sub` is the user's id and `tenant` its tenant. The algorithm in the token's
//!   header only selects among the configured keys, so `alg: none` and HS/RS confusion fail.
//! - `Authorization: ApiKey <key>` or `X-API-Key: <key>`, where a key reads
//!   `{tenant}.{key id}.{secret}`; only the secret's SHA-256 is stored.

use std::sync::Arc;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use commands::bus::{CommandBus, CommandError};
use commands::tenants::TenantCommands;
use commands::users::UserCommands;
use domain::aggregate::Versioned;
use domain::api_keys::{ApiKey, SecretHash};
use domain::identity::{Principal, StreamId, TenantId};
use domain::tenants::{Tenant, TenantError, TenantSettings};
use domain::users::{User, UserStatus};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::AuthSettings;

/// Why credentials were refused. Logged; clients only learn "unauthenticated".
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credentials at all.
    #[error("no credentials")]
    Missing,
    /// The header is not a recognised scheme, or the credential does not parse.
    #[error("malformed credentials: {0}")]
    Malformed(&'static str),
    /// The token's signature, algorithm or claims are not acceptable.
    #[error("token rejected: {0}")]
    Token(String),
    /// The user or key does not exist, is deactivated, revoked or expired.
    #[error("principal refused: {0}")]
    Principal(String),
    /// The credentials are valid, but their tenant is suspended.
    #[error("tenant {tenant} is suspended")]
    Suspended {
        /// The tenant.
        tenant: TenantId,
    },
    /// The store could not be read.
    #[error("credential store unavailable")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The claims this backend reads from a JWT.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    tenant: String,
}

/// A caller whose credentials hold: who it is and what its tenant's settings are now.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// Who is calling.
    pub principal: Principal,
    /// The caller's tenant's settings (empty for a tenant that predates provisioning).
    pub settings: TenantSettings,
}

/// A tenant's state as read for a request, or why it could not be read.
type Standing = Result<Versioned<Tenant>, CommandError<TenantError>>;

/// Checks credentials.
pub struct Authenticator {
    users: Arc<UserCommands>,
    keys: Arc<CommandBus<ApiKey>>,
    tenants: Arc<TenantCommands>,
    hs256: Option<DecodingKey>,
    rs256: Option<DecodingKey>,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("hs256", &self.hs256.is_some())
            .field("rs256", &self.rs256.is_some())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// An authenticator over the current state of users and keys. Settings are validated, so
    /// a configured RS256 key parses.
    pub fn new(
        settings: &AuthSettings,
        users: Arc<UserCommands>,
        keys: Arc<CommandBus<ApiKey>>,
        tenants: Arc<TenantCommands>,
    ) -> Self {
        let secret = settings.jwt_hs256_secret.expose();
        let pem = settings.jwt_rs256_public_key_pem.expose();
        Self {
            users,
            keys,
            tenants,
            hs256: (!secret.is_empty()).then(|| DecodingKey::from_secret(secret.as_bytes())),
            rs256: if pem.is_empty() {
                None
            } else {
                DecodingKey::from_rsa_pem(pem.as_bytes()).ok()
            },
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
        }
    }

    /// The principal behind the request's credentials, with its tenant's current settings.
    ///
    /// # Errors
    /// [`AuthError`]; `Missing` when there are no credentials at all, `Suspended` when they
    /// hold but their tenant is suspended.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        now: DateTime<Utc>,
    ) -> Result<Authenticated, AuthError> {
        let (principal, tenant) = match credential(headers)? {
            Credential::Bearer(token) => self.jwt(token).await?,
            Credential::ApiKey(key) => self.api_key(key, now).await?,
        };
        // Credentials that do not hold learn nothing of their tenant's standing: the principal
        // is judged first.
        let principal = principal?;
        let tenant = tenant.map_err(|e| AuthError::Store(Box::new(e)))?;
        if tenant.state().suspension().is_some() {
            return Err(AuthError::Suspended {
                tenant: principal.tenant,
            });
        }
        Ok(Authenticated {
            settings: tenant.state().settings(),
            principal,
        })
    }

    /// The principal a token names (or why not), and its tenant's state, read together.
    async fn jwt(
        &self,
        token: &str,
    ) -> Result<(Result<Principal, AuthError>, Standing), AuthError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Token(e.to_string()))?;
        // The header only chooses among configured keys; it never chooses how a key is used.
        let key = match header.alg {
            Algorithm::HS256 => self.hs256.as_ref(),
            Algorithm::RS256 => self.rs256.as_ref(),
            _ => None,
        }
        .ok_or_else(|| AuthError::Token(format!("algorithm {:?} is not accepted", header.alg)))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // A token whose `nbf` lies ahead (beyond the clock-skew leeway) is not valid yet.
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| AuthError::Token(e.to_string()))?
            .claims;
        let tenant =
            TenantId::parse(&claims.tenant).map_err(|_| AuthError::Malformed("tenant claim"))?;
        let user = Uuid::parse_str(&claims.sub).map_err(|_| AuthError::Malformed("sub claim"))?;
        let stream = StreamId::new(tenant.clone(), user);
        let (state, standing) = tokio::join!(self.users.load(&stream), self.tenants.load(&tenant));
        let state = state.map_err(|e| AuthError::Store(Box::new(e)))?;
        let principal = match state.state() {
            User::Registered {
                status: UserStatus::Active,
                roles,
                ..
            } => Ok(Principal::user(tenant, user, roles.clone())),
            User::Registered { .. } => Err(AuthError::Principal("user is deactivated".into())),
            User::Unregistered => Err(AuthError::Principal("no such user".into())),
        };
        Ok((principal, standing))
    }

    /// The principal a key names (or why not), and its tenant's state, read together.
    async fn api_key(
        &self,
        presented: &str,
        now: DateTime<Utc>,
    ) -> Result<(Result<Principal, AuthError>, Standing), AuthError> {
        let malformed = || AuthError::Malformed("API keys read {tenant}.{key id}.{secret}");
        let mut parts = presented.splitn(3, '.');
        let (Some(tenant), Some(key), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let tenant = TenantId::parse(tenant).map_err(|_| malformed())?;
        let key = Uuid::parse_str(key).map_err(|_| malformed())?;
        let stream = StreamId::new(tenant.clone(), key);
        let (state, standing) = tokio::join!(self.keys.load(&stream), self.tenants.load(&tenant));
        let state = state.map_err(|e| AuthError::Store(Box::new(e)))?;
        let principal = state
            .state()
            .authenticate(&hash_secret(secret), now)
            .map(|roles| Principal::api_key(tenant, key, roles.clone()))
            .map_err(|rejected| AuthError::Principal(rejected.to_string()));
        Ok((principal, standing))
    }
}

enum Credential<'a> {
    Bearer(&'a str),
    ApiKey(&'a str),
}

fn credential(headers: &HeaderMap) -> Result<Credential<'_>, AuthError> {
    let text = |name| {
        headers
            .get(name)
            .map(|value| {
                value
                    .to_str()
                    .map_err(|_| AuthError::Malformed("header is not ASCII"))
            })
            .transpose()
    };
    if let Some(authorization) = text(axum::http::header::AUTHORIZATION)? {
        let (scheme, value) = authorization
            .split_once(' ')
            .ok_or(AuthError::Malformed("Authorization"))?;
        let value = value.trim();
        return match scheme {
            s if s.eq_ignore_ascii_case("bearer") => Ok(Credential::Bearer(value)),
            s if s.eq_ignore_ascii_case("apikey") => Ok(Credential::ApiKey(value)),
            _ => Err(AuthError::Malformed("unknown Authorization scheme")),
        };
    }
    match text(axum::http::HeaderName::from_static("x-api-key"))? {
        Some(key) => Ok(Credential::ApiKey(key.trim())),
        None => Err(AuthError::Missing),
    }
}

/// Whether the request carries credentials of any kind (proven or not).
pub fn credential_present(headers: &HeaderMap) -> bool {
    headers.contains_key(axum::http::header::AUTHORIZATION) || headers.contains_key("x-api-key")
}

/// The stored form of a key secret.
pub fn hash_secret(secret: &str) -> SecretHash {
    SecretHash::parse(&hex(&Sha256::digest(secret.as_bytes())))
        .unwrap_or_else(|_| unreachable!("a SHA-256 hex digest is 64 lower-case hex digits"))
}

/// A new API key for `key` in `tenant`: the full key (shown once) and its secret's hash.
pub fn new_api_key(tenant: &TenantId, key: Uuid) -> (String, SecretHash) {
    let secret = hex(&rand::random::<[u8; 32]>());
    let hash = hash_secret(&secret);
    (format!("{tenant}.{key}.{secret}"), hash)
}

/// Signs an HS256 token for `user` of `tenant` with the configured secret, valid for `ttl`.
///
/// # Errors
/// When no HS256 secret is configured or the tenant is invalid.
pub fn mint_hs256_token(
    settings: &AuthSettings,
    tenant: &str,
    user: Uuid,
    ttl: chrono::Duration,
) -> Result<String, Box<dyn std::error::Error>> {
    #[derive(serde::Serialize)]
    struct Minted<'a> {
        sub: String,
        tenant: &'a str,
        iss: &'a str,
        aud: &'a str,
        iat: i64,
        exp: i64,
    }
    let secret = settings.jwt_hs256_secret.expose();
    if secret.is_empty() {
        return Err("auth.jwt_hs256_secret (APP_AUTH__JWT_HS256_SECRET) is not configured".into());
    }
    TenantId::parse(tenant)?;
    let now = Utc::now();
    let claims = Minted {
        sub: user.to_string(),
        tenant,
        iss: &settings.jwt_issuer,
        aud: &settings.jwt_audience,
        iat: now.timestamp(),
        exp: (now + ttl).timestamp(),
    };
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &key,
    )?)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
