//! The routers. Commands and queries are separate routers so they can be served by separate
//! processes; [`router`] merges them with health and the OpenAPI document.

use std::sync::Arc;
use std::time::Duration;

use ::commands::bus::CommandBus;
use ::commands::jobs::JobCommands;
use ::commands::users::UserCommands;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use domain::api_keys::ApiKey;
use domain::documents::Document;
use sqlx::PgPool;
use tracing::Instrument;
use uuid::Uuid;

use crate::auth::Authenticator;
use crate::config::Settings;
use crate::documents::DocumentStore;
use crate::error::{ApiError, REQUEST_ID};
use crate::extract::is_valid_id;
use crate::security::{self, RateLimits};

pub mod admin;
pub mod commands;
pub mod documents;
pub mod health;
pub mod job_queries;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod queries;

/// What handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Read models and checks.
    pub pool: PgPool,
    /// User commands.
    pub users: Arc<UserCommands>,
    /// API key commands.
    pub api_keys: Arc<CommandBus<ApiKey>>,
    /// Job commands.
    pub jobs: Arc<JobCommands>,
    /// Document records.
    pub documents: Arc<CommandBus<Document>>,
    /// Document bytes.
    pub document_store: DocumentStore,
    /// Credentials checks.
    pub auth: Arc<Authenticator>,
    /// The relay (for its checkpoint in lag reports).
    pub relay: ::commands::relay::Relay,
    /// NATS, for readiness.
    pub nats: async_nats::Client,
    /// Validated settings.
    pub settings: Arc<Settings>,
}

/// The request's id (accepted from `x-request-id` when well-formed, generated otherwise).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every route of the API, behind the hardening layers.
pub fn router(state: AppState) -> Router {
    let http = state.settings.http.clone();
    let limits = RateLimits::new(&state.settings.rate_limit);
    Router::new()
        .merge(commands::router())
        .merge(jobs::router())
        .merge(documents::command_router())
        .merge(queries::router())
        .merge(job_queries::router())
        .merge(documents::query_router())
        .merge(admin::router())
        .merge(health::router())
        .merge(metrics::router())
        .merge(openapi::router())
        .fallback(|| async {
            ApiError::NotFound {
                code: "route_not_found",
                detail: "no such route; see /api/v1/openapi.json".to_owned(),
            }
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::extract::DefaultBodyLimit::max(http.body_limit_bytes))
        .layer(middleware::from_fn_with_state(limits, security::rate_limit))
        .layer(middleware::from_fn_with_state(
            Duration::from_millis(http.request_timeout_ms),
            security::timeout,
        ))
        .layer(security::cors(&http))
        .layer(middleware::from_fn_with_state(http.hsts, security::headers))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// Assigns the request id, opens the request's span, and echoes the id on the response.
async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_valid_id(id))
        .map_or_else(|| Uuid::now_v7().to_string(), str::to_owned);
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request.id = %id,
        http.method = %request.method(),
        http.path = %request.uri().path(),
    );
    let started = std::time::Instant::now();
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request).instrument(span.clone()))
        .await;
    span.in_scope(|| {
        tracing::info!(
            http.status = response.status().as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request finished"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}
