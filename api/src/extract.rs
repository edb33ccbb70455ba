//! Extractors that read requests and turn every kind of bad input into a clear problem.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use commands::CommandContext;
use domain::event::ConsistencyToken;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;
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

/// A resource id from the path; anything but a UUID is a 400 saying so.
#[derive(Debug, Clone, Copy)]
pub struct IdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::bad_request("invalid_path", rejection.body_text()))?;
        Uuid::parse_str(&raw).map(Self).map_err(|_| {
            ApiError::bad_request(
                "invalid_id",
                format!("`{}` is not a valid id: ids are UUIDs", truncate(&raw, 64)),
            )
        })
    }
}

/// The command's context: request, correlation and causation ids, actor and tenant.
#[derive(Debug, Clone)]
pub struct Context(pub CommandContext);

impl FromRequestParts<AppState> for Context {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
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
        Ok(Self(CommandContext {
            causation_id: request_id.clone(),
            request_id,
            correlation_id,
            // Until authentication lands, every request acts anonymously in the default tenant.
            actor: "anonymous".to_owned(),
            tenant_id: state.settings.tenant.default.clone(),
        }))
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
        let version = raw.trim().trim_start_matches("W/").trim_matches('"');
        version.parse().map(|v| Self(Some(v))).map_err(|_| {
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
