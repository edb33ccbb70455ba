//! `ApiError`: every failure the API reports, each mapped once to an HTTP status and an
//! `application/problem+json` body (RFC 9457) with a stable `code` and the request id.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use commands::documents::{UploadError, UploadFailed};
use commands::CommandError;
use domain::error::{DomainError, ErrorKind};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::limits::Budget;

tokio::task_local! {
    /// The current request's id, set by the request-id middleware around each request so that
    /// every problem body can name it without threading it through every handler.
    pub static REQUEST_ID: String;
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field, as named in the request (`email`, `display_name`).
    pub field: String,
    /// Stable machine-readable code.
    pub code: String,
    /// What is wrong, for people.
    pub message: String,
}

/// The problem+json body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type (`/problems/{code}`).
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// Stable machine-readable code; clients match on this.
    pub code: String,
    /// The request's id, for support and logs.
    pub request_id: String,
    /// Invalid fields, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Every error the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be read (syntax, parameters, headers).
    #[error("{detail}")]
    BadRequest {
        /// Stable code.
        code: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// 401: no valid credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: authenticated, but the policy refuses the action.
    #[error("{0}")]
    Forbidden(String),
    /// 403: the credentials hold, but their tenant is suspended.
    #[error("{0}")]
    TenantSuspended(String),
    /// 429 (with `Retry-After`) or 422: a tenant's quota is used up.
    #[error("{detail}")]
    QuotaExceeded {
        /// The quota, as named in the tenant's settings.
        quota: &'static str,
        /// What was refused and why.
        detail: String,
        /// Seconds until the quota renews, for quotas that renew.
        retry_after_secs: Option<u64>,
    },
    /// 404: no such resource.
    #[error("{detail}")]
    NotFound {
        /// Stable code.
        code: &'static str,
        /// What was not found.
        detail: String,
    },
    /// 405: the route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: conflicts with the current state or with a concurrent command.
    #[error("{detail}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// What conflicts.
        detail: String,
    },
    /// 413: the body is larger than allowed.
    #[error("request body too large")]
    PayloadTooLarge,
    /// 413: an upload is larger than allowed (the detail names the limit).
    #[error("{0}")]
    UploadTooLarge(String),
    /// 415: the body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 415: an upload's content is not an accepted type.
    #[error("{detail}")]
    UnsupportedContent {
        /// Stable code.
        code: &'static str,
        /// What was refused.
        detail: String,
    },
    /// 422: readable, but the values break the rules.
    #[error("{detail}")]
    Unprocessable {
        /// Stable code.
        code: &'static str,
        /// What is wrong.
        detail: String,
        /// Per-field problems.
        errors: Vec<FieldError>,
    },
    /// 429: the caller's rate limit is exhausted.
    #[error("rate limit exceeded; retry after {retry_after_secs} s")]
    TooManyRequests {
        /// Seconds until a request will be accepted again.
        retry_after_secs: u64,
        /// The exhausted budget, reported in `RateLimit-*` headers.
        budget: Option<Budget>,
    },
    /// 429: the member wrote as many posts or comments as a minute allows.
    #[error("at most {per_minute} {what} per minute; retry after {retry_after_secs} s")]
    WriteLimited {
        /// `posts` or `comments`.
        what: &'static str,
        /// The configured limit.
        per_minute: u32,
        /// Seconds until another will be accepted.
        retry_after_secs: u64,
    },
    /// 429: the caller or the process holds as many live streams as allowed.
    #[error("{0}")]
    TooManyStreams(String),
    /// 503: the request took longer than the configured timeout.
    #[error("the request took too long and was abandoned")]
    Timeout,
    /// 503: the projection has not caught up with the given consistency token in time.
    #[error("{0}")]
    ProjectionBehind(String),
    /// 503: a dependency is unavailable for a moment (see [`ApiError::failed`]).
    #[error("service temporarily unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// 500: anything unexpected. Details are logged, never returned.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// A 400 with a code and detail.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            detail: detail.into(),
        }
    }

    /// A 422 listing invalid fields.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        Self::Unprocessable {
            code: "validation_failed",
            detail: format!("invalid fields: {}", fields.join(", ")),
            errors,
        }
    }

    /// A policy refusal.
    pub fn forbidden(denied: domain::policy::Denied) -> Self {
        Self::Forbidden(denied.to_string())
    }

    /// A dependency failed: 503 with `Retry-After` when retrying can succeed (pool timeout,
    /// connection lost, database shutting down), 500 for everything else (an event that does
    /// not decode, a bug), so clients do not retry the permanent and alerts on 500s fire.
    pub fn failed(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let error = error.into();
        if commands::failure::is_transient(error.as_ref()) {
            Self::Unavailable(error)
        } else {
            Self::Internal(error)
        }
    }

    /// An unexpected failure.
    pub fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(error))
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code, "Bad request"),
            Self::Unauthenticated(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Unauthenticated",
            ),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Self::TenantSuspended(_) => (
                StatusCode::FORBIDDEN,
                "tenant_suspended",
                "Tenant suspended",
            ),
            Self::QuotaExceeded {
                retry_after_secs: Some(_),
                ..
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                "quota_exceeded",
                "Quota exceeded",
            ),
            Self::QuotaExceeded { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "quota_exceeded",
                "Quota exceeded",
            ),
            Self::TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests",
            ),
            Self::TooManyStreams(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                "Too many live streams",
            ),
            Self::WriteLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "write_rate_limited",
                "Writing too fast",
            ),
            Self::Timeout => (
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "Request timed out",
            ),
            Self::NotFound { code, .. } => (StatusCode::NOT_FOUND, code, "Not found"),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            Self::Conflict { code, .. } => (StatusCode::CONFLICT, code, "Conflict"),
            Self::PayloadTooLarge | Self::UploadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            Self::UnsupportedContent { code, .. } => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code,
                "Unsupported media type",
            ),
            Self::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
            ),
            Self::Unprocessable { code, .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                code,
                "Unprocessable request",
            ),
            Self::ProjectionBehind(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "projection_behind",
                "Projection behind",
            ),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Internal server error",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, title) = self.parts();
        if let Self::Internal(source) | Self::Unavailable(source) = &self {
            // Logged once, here, with the cause chain; the client gets an opaque body.
            tracing::error!(error = %source, cause = ?source, status = status.as_u16(), "request failed");
        }
        let errors = match &self {
            Self::Unprocessable { errors, .. } => errors.clone(),
            Self::QuotaExceeded { quota, detail, .. } => vec![FieldError {
                field: (*quota).to_owned(),
                code: "quota_exceeded".to_owned(),
                message: detail.clone(),
            }],
            _ => Vec::new(),
        };
        let problem = Problem {
            problem_type: format!("/problems/{}", code.replace('_', "-")),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            code: code.to_owned(),
            request_id: REQUEST_ID.try_with(Clone::clone).unwrap_or_default(),
            errors,
        };
        let mut response = (status, axum::Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            Self::ProjectionBehind(_) | Self::Unavailable(_) | Self::Timeout => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::TooManyStreams(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Self::WriteLimited {
                retry_after_secs, ..
            }
            | Self::QuotaExceeded {
                retry_after_secs: Some(retry_after_secs),
                ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::TooManyRequests {
                retry_after_secs,
                budget,
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
                if let Some(budget) = budget {
                    budget.write(headers);
                }
            }
            Self::Unauthenticated(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer, ApiKey"),
                );
            }
            _ => {}
        }
        response
    }
}

/// Domain errors keep their code; their kind picks the status: invalid input 422, unknown
/// aggregate 404, a conflict with the aggregate's current state 409.
pub fn from_domain(error: &impl DomainError) -> ApiError {
    let (code, detail) = (error.code(), error.to_string());
    match error.kind() {
        ErrorKind::Invalid => ApiError::Unprocessable {
            code,
            detail,
            errors: Vec::new(),
        },
        ErrorKind::NotFound => ApiError::NotFound { code, detail },
        // Refused because of the aggregate's current state (a deactivated user, a finished
        // job): the request conflicts with the resource as it is now.
        ErrorKind::Conflict | ErrorKind::Rejected => ApiError::Conflict { code, detail },
    }
}

impl<E: DomainError + Send + Sync + 'static> From<CommandError<E>> for ApiError {
    fn from(error: CommandError<E>) -> Self {
        match error {
            CommandError::Rejected(rejection) => from_domain(&rejection),
            CommandError::Conflict => Self::Conflict {
                code: "concurrent_modification",
                detail: "another command changed this resource at the same time; reload and retry"
                    .to_owned(),
            },
            CommandError::IdempotencyKeyReused => Self::Unprocessable {
                code: "idempotency_key_reused",
                detail: error.to_string(),
                errors: Vec::new(),
            },
            CommandError::Constraint { .. } => Self::internal(error),
            CommandError::Store(_) => Self::failed(error),
        }
    }
}

impl From<commands::prices::ImportRequestError> for ApiError {
    fn from(error: commands::prices::ImportRequestError) -> Self {
        match error {
            commands::prices::ImportRequestError::Asset(error) => error.into(),
            commands::prices::ImportRequestError::Import(error) => error.into(),
        }
    }
}

impl From<commands::prices::ScheduleError> for ApiError {
    fn from(error: commands::prices::ScheduleError) -> Self {
        match error {
            commands::prices::ScheduleError::Asset(error) => error.into(),
            commands::prices::ScheduleError::Schedule(error) => error.into(),
        }
    }
}

impl From<commands::prices::TradeError> for ApiError {
    fn from(error: commands::prices::TradeError) -> Self {
        match error {
            commands::prices::TradeError::Asset(error) => error.into(),
            commands::prices::TradeError::Portfolio(error) => error.into(),
            commands::prices::TradeError::CurrencyMismatch { .. } => {
                Self::validation(vec![FieldError {
                    field: "asset_id".to_owned(),
                    code: "currency_mismatch".to_owned(),
                    message: error.to_string(),
                }])
            }
        }
    }
}

impl From<commands::prices::RecordError> for ApiError {
    fn from(error: commands::prices::RecordError) -> Self {
        match error {
            commands::prices::RecordError::Asset(error) => error.into(),
            commands::prices::RecordError::Series(error) => error.into(),
        }
    }
}

impl From<projections::consistency::ConsistencyError> for ApiError {
    fn from(error: projections::consistency::ConsistencyError) -> Self {
        use projections::consistency::ConsistencyError;
        match error {
            ConsistencyError::Behind { .. } => Self::ProjectionBehind(format!(
                "{error}; the write is stored and will appear, retry shortly"
            )),
            ConsistencyError::Database(source) => Self::failed(source),
        }
    }
}

impl From<projections::prices::ValuationError> for ApiError {
    fn from(error: projections::prices::ValuationError) -> Self {
        use projections::prices::ValuationError;
        match error {
            ValuationError::Database(source) => Self::failed(source),
            too_large @ ValuationError::TooLarge => Self::Unprocessable {
                code: "value_out_of_range",
                detail: too_large.to_string(),
                errors: Vec::new(),
            },
        }
    }
}

impl From<UploadFailed<ApiError>> for ApiError {
    fn from(error: UploadFailed<ApiError>) -> Self {
        match error {
            UploadFailed::Upload(error) => error.into(),
            UploadFailed::Command(error) => error.into(),
            UploadFailed::Context(error) => error,
            inconsistent @ UploadFailed::Inconsistent(_) => {
                Self::Internal(inconsistent.to_string().into())
            }
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(error: UploadError) -> Self {
        use domain::documents::DocumentError;
        match error {
            UploadError::Refused(
                refused @ (DocumentError::UnsupportedContent | DocumentError::NotAllowed(_)),
            ) => Self::UnsupportedContent {
                code: refused.code(),
                detail: refused.to_string(),
            },
            UploadError::Refused(refused) => from_domain(&refused),
            UploadError::TooLarge { .. } => Self::UploadTooLarge(error.to_string()),
            UploadError::Body(_) => Self::bad_request("unreadable_body", error.to_string()),
            UploadError::Store(_) => Self::failed(error),
        }
    }
}

impl From<commands::feed::FeedError> for ApiError {
    fn from(error: commands::feed::FeedError) -> Self {
        Self::failed(error)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::failed(error)
    }
}
