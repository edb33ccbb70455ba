//! Extractors that read requests and turn every kind of bad input into a clear problem.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use commands::{CommandContext, IdempotencyClaim};
use domain::event::ConsistencyToken;
use domain::identity::{Principal, StreamId, TenantId};
use domain::policy::{authorize, Action};
use domain::tenants::TenantSettings;
use projections::consistency;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::http::auth::{hex, AuthError, Authenticated};
use crate::http::error::ApiError;
use crate::http::limits::{BudgetSlot, ClientIp};
use crate::routes::{AppState, RequestId};

/// A JSON body. Unknown fields, wrong types, bad syntax and a wrong content type each get their
/// own problem that says what is wrong.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType(
                "the body must be JSON, sent with `Content-Type: application/json`".to_owned(),
            )),
            Err(JsonRejection::JsonSyntaxError(error)) => Err(ApiError::bad_request(
                "malformed_json",
                format!("the body is not valid JSON: {}", error.body_text()),
            )),
            Err(JsonRejection::JsonDataError(error)) => Err(ApiError::Unprocessable {
                code: "invalid_body",
                detail: error.body_text(),
                errors: Vec::new(),
            }),
            Err(JsonRejection::BytesRejection(error))
                if error.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::PayloadTooLarge)
            }
            Err(other) => Err(ApiError::bad_request("unreadable_body", other.body_text())),
        }
    }
}

/// Query-string parameters, with a 400 that names the parameter on failure.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|rejection: QueryRejection| {
                ApiError::bad_request("invalid_query", rejection.body_text())
            })
    }
}

/// Reads a query string as `T`, for handlers that must authorize before judging parameters (a
/// refused caller learns nothing about what the route expects). Same rules as [`QueryParams`].
///
/// # Errors
/// `400 invalid_query` saying what is wrong.
pub fn query_of<T: DeserializeOwned>(uri: &axum::http::Uri) -> Result<T, ApiError> {
    Query::<T>::try_from_uri(uri)
        .map(|Query(value)| value)
        .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))
}

/// A resource id from the path; anything but a UUID is a 400 saying so.
#[derive(Debug, Clone, Copy)]
pub struct IdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::bad_request("invalid_path", rejection.body_text()))?;
        parse_id(&raw).map(Self)
    }
}

/// An id as this API writes it: a hyphenated UUID (what `format: uuid` describes); anything
/// else is a 400 saying so.
///
/// # Errors
/// `400 invalid_id`.
pub fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    let hyphenated = raw.len() == 36;
    Uuid::parse_str(raw)
        .ok()
        .filter(|_| hyphenated)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_id",
                format!("`{}` is not a valid id: ids are UUIDs", truncate(raw, 64)),
            )
        })
}

/// The tenant an anonymous route names (`{tenant}`), and its resource id (`{id}`) if it has
/// one; a malformed tenant or id is a 400 saying so.
#[derive(Debug, Clone)]
pub struct TenantPath {
    /// The tenant.
    pub tenant: TenantId,
    /// The resource, on routes with an `{id}`.
    pub id: Option<Uuid>,
}

impl TenantPath {
    /// The pattern of a tenant in a path: what [`TenantId::parse`] accepts.
    pub const TENANT_PATTERN: &'static str = "^[A-Za-z0-9_-]{1,128}$";

    /// The resource id of a route that has one.
    ///
    /// # Errors
    /// `400 invalid_path` on a route without `{id}` (a routing mistake).
    pub fn id(&self) -> Result<Uuid, ApiError> {
        self.id
            .ok_or_else(|| ApiError::bad_request("invalid_path", "this route names no resource"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TenantPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) =
            Path::<std::collections::HashMap<String, String>>::from_request_parts(parts, state)
                .await
                .map_err(|rejection| {
                    ApiError::bad_request("invalid_path", rejection.body_text())
                })?;
        let tenant = raw.get("tenant").map(String::as_str).unwrap_or_default();
        let tenant = TenantId::parse(tenant).map_err(|_| {
            ApiError::bad_request(
                "invalid_tenant",
                format!(
                    "`{}` is not a tenant: 1 to 128 letters, digits, `-` or `_`",
                    truncate(tenant, 64)
                ),
            )
        })?;
        let id = raw.get("id").map(|id| parse_id(id)).transpose()?;
        Ok(Self { tenant, id })
    }
}

/// The authenticated caller of a protected route, with the request's ids.
///
/// A handler gets what it needs to act only through [`Caller::may`] (a command context) or
/// [`Caller::may_read`] (the tenant to query), both of which run the policy first: a route
/// cannot reach the command bus or a read model without having been authorized.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who is calling.
    pub principal: Principal,
    /// The caller's tenant's settings, as they are now.
    pub settings: TenantSettings,
    request_id: String,
    correlation_id: String,
    idempotency_key: Option<String>,
    fingerprint_prefix: String,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let client = parts.extensions.get::<ClientIp>().map(|ClientIp(ip)| *ip);
        let limits = state.limits.as_deref().zip(client);
        if let Some((limits, client)) = limits {
            limits.before_authentication(client)?;
        }
        let authenticated = match state.auth.authenticate(&parts.headers, Utc::now()).await {
            Ok(authenticated) => authenticated,
            Err(AuthError::Missing) => {
                return Err(ApiError::Unauthenticated(
                    "this route requires credentials".to_owned(),
                ))
            }
            Err(AuthError::Store(source)) => return Err(ApiError::failed(source)),
            Err(AuthError::Suspended { tenant }) => {
                return Err(ApiError::TenantSuspended(format!(
                    "tenant {tenant} is suspended: its credentials are refused until an operator \
                     reactivates it"
                )))
            }
            Err(refused) => {
                tracing::info!(reason = %refused, "credentials refused");
                if let Some((limits, client)) = limits {
                    limits.refused(client);
                }
                return Err(ApiError::Unauthenticated(
                    "the credentials are invalid, expired or revoked".to_owned(),
                ));
            }
        };
        let Authenticated {
            principal,
            settings,
        } = authenticated;
        if let Some(limits) = &state.limits {
            let budget = limits.principal(&principal, &settings, &parts.method)?;
            if let Some(slot) = parts.extensions.get::<BudgetSlot>() {
                slot.set(budget);
            }
        }
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_else(|| Uuid::now_v7().to_string());
        let correlation_id = match header(&parts.headers, "x-correlation-id")? {
            Some(id) if is_valid_id(id) => id.to_owned(),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "invalid_correlation_id",
                    "X-Correlation-Id must be 1 to 128 letters, digits, '-', '_', '.' or ':'",
                ))
            }
            None => request_id.clone(),
        };
        let idempotency_key = match header(&parts.headers, "idempotency-key")? {
            Some(key)
                if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                Some(key.to_owned())
            }
            Some(_) => {
                return Err(ApiError::bad_request(
                    "invalid_idempotency_key",
                    "Idempotency-Key must be 1 to 255 visible ASCII characters",
                ))
            }
            None => None,
        };
        let if_match = header(&parts.headers, "if-match")?.unwrap_or_default();
        Ok(Self {
            principal,
            settings,
            request_id,
            correlation_id,
            idempotency_key,
            fingerprint_prefix: fingerprint_prefix(
                parts.method.as_str(),
                parts.uri.path(),
                if_match,
            ),
        })
    }
}

impl Caller {
    /// Authorizes a command; returns the context to run it in. `body` is the parsed request
    /// body (`&()` for none): with an idempotency key, its fingerprint tells a retry from a
    /// different request.
    ///
    /// # Errors
    /// 403 when the policy refuses.
    pub fn may(
        &self,
        action: impl Into<Action>,
        subject: Option<Uuid>,
        body: &impl Serialize,
    ) -> Result<CommandContext, ApiError> {
        authorize(&self.principal, action, subject).map_err(ApiError::forbidden)?;
        let idempotency = self.idempotency_key.as_ref().map(|key| IdempotencyClaim {
            key: key.clone(),
            request_hash: fingerprint_with(&self.fingerprint_prefix, body),
        });
        Ok(CommandContext {
            request_id: self.request_id.clone(),
            correlation_id: self.correlation_id.clone(),
            causation_id: self.request_id.clone(),
            actor: self.principal.id.clone(),
            tenant: self.principal.tenant.clone(),
            idempotency,
        })
    }

    /// Moves an authorized command `context` to `tenant`, for operators' commands on a tenant:
    /// the events go to that tenant's streams, and their actor names the operator together
    /// with the tenant its key belongs to (`operator:{tenant}:{principal}`), so the target
    /// tenant's auditors see who acted.
    pub fn on_tenant(&self, mut context: CommandContext, tenant: &TenantId) -> CommandContext {
        context.actor = format!("operator:{}:{}", self.principal.tenant, self.principal.id);
        context.tenant = tenant.clone();
        context
    }

    /// Authorizes a query; returns the tenant every read must be scoped by.
    ///
    /// # Errors
    /// 403 when the policy refuses.
    pub fn may_read(
        &self,
        action: impl Into<Action>,
        subject: Option<Uuid>,
    ) -> Result<&TenantId, ApiError> {
        authorize(&self.principal, action, subject).map_err(ApiError::forbidden)?;
        Ok(&self.principal.tenant)
    }
}

/// The version a command expects its aggregate to be at (`If-Match: "3"`), if the client said.
#[derive(Debug, Clone, Copy)]
pub struct ExpectedVersion(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for ExpectedVersion {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(raw) = header(&parts.headers, "if-match")? else {
            return Ok(Self(None));
        };
        // An entity tag as sent back from `ETag` (`"3"`, or weak `W/"3"`), or the bare version.
        let tag = raw.strip_prefix("W/").unwrap_or(raw);
        let version = tag
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .or(Some(tag))
            .filter(|digits| {
                (1..=19).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
            });
        version
            .and_then(|digits| digits.parse().ok())
            .map(|v| Self(Some(v)))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_if_match",
                    "If-Match must be the resource's version as returned in ETag, e.g. \"3\"",
                )
            })
    }
}

/// A consistency token from `X-Consistency-Token` or `?consistency_token=`, if any.
#[derive(Debug, Clone)]
pub struct Consistency(pub Option<ConsistencyToken>);

impl<S: Send + Sync> FromRequestParts<S> for Consistency {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        #[derive(serde::Deserialize)]
        struct TokenQuery {
            consistency_token: Option<String>,
        }
        let from_query = Query::<TokenQuery>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|Query(query)| query.consistency_token);
        let raw = match header(&parts.headers, "x-consistency-token")? {
            Some(raw) => Some(raw.to_owned()),
            None => from_query,
        };
        raw.map(|raw| raw.parse::<ConsistencyToken>())
            .transpose()
            .map(Self)
            .map_err(|error| ApiError::bad_request("invalid_consistency_token", error.to_string()))
    }
}

fn fingerprint_prefix(method: &str, path: &str, if_match: &str) -> String {
    format!("{method} {path}\n{if_match}\n")
}

fn fingerprint_with(prefix: &str, body: &impl Serialize) -> String {
    let body = serde_json::to_string(body).unwrap_or_default();
    hex(&Sha256::digest(format!("{prefix}{body}")))
}

/// The fingerprint that tells a retry (same method, path, `If-Match` and body) from a different
/// request under the same idempotency key.
pub fn request_fingerprint(
    method: &str,
    path: &str,
    if_match: &str,
    body: &impl Serialize,
) -> String {
    fingerprint_with(&fingerprint_prefix(method, path, if_match), body)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|value| {
            value.to_str().map_err(|_| {
                ApiError::bad_request("invalid_header", format!("{name} must be visible ASCII"))
            })
        })
        .transpose()
}

/// Ids a client may supply (request and correlation ids): safe to log and to put in headers.
pub fn is_valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

fn truncate(raw: &str, max: usize) -> String {
    raw.chars().take(max).collect()
}

/// Waits for the token, if any, on `projection` (read where queries read: a lagging replica
/// answers `503 projection_behind` after the wait, never older data).
///
/// # Errors
/// `404` for a token of another aggregate type or tenant, `503` when the wait runs out. A token
/// must name a stream of one of `aggregate_types` (those `projection` reads) in the caller's
/// tenant.
pub async fn consistent(
    state: &AppState,
    tenant: &TenantId,
    token: Consistency,
    aggregate_types: &[&str],
    projection: &'static str,
) -> Result<(), ApiError> {
    let Some(token) = token.0 else {
        return Ok(());
    };
    let own_stream = token
        .aggregate_id
        .parse::<StreamId>()
        .is_ok_and(|stream| stream.tenant == *tenant);
    // A well-formed token that names no write of this collection in the caller's tenant: there
    // is no such write to wait for.
    if !aggregate_types.contains(&token.aggregate_type.as_str()) || !own_stream {
        return Err(ApiError::NotFound {
            code: "consistency_token_not_found",
            detail: format!(
                "this token names no command on a {} of your tenant; pass the token a command \
                 on this collection returned",
                aggregate_types.join(" or ")
            ),
        });
    }
    consistency::wait_for(
        &state.read_pool,
        projection,
        &token,
        state.settings.consistency_wait(),
    )
    .await?;
    Ok(())
}
