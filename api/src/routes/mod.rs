//! The routes, one folder per bounded context, and the one place they are registered.
//!
//! Each context hands over its [`Routes`]: command routes (they append events) and query routes
//! (they read projections), each registered together with its OpenAPI documentation through
//! `utoipa-axum`, so the document cannot miss a route. A protected route is registered with the
//! policy action it needs ([`Routes::command`], [`Routes::query`]); the action is written into
//! the document as `x-action`, which is what the security walk derives its cases from.
//! [`CONTEXTS`] is the registration point: adding a context is its module line and one entry
//! there.
//!
//! Commands and queries are separate routers so separate processes can serve them: the
//! process's `roles` decide which are mounted; health, metrics and the document always are.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use commands::relay::Relay;
use commands::WriteSide;
use domain::policy::Action;
use sqlx::PgPool;
use tracing::Instrument;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::tag::{Tag, TagBuilder};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use uuid::Uuid;

use crate::config::Settings;
use crate::http::auth::Authenticator;
use crate::http::error::{ApiError, REQUEST_ID};
use crate::http::extract::is_valid_id;
use crate::http::limits::{self, AddressLimits, RateLimits, WriteLimits};
use crate::http::security;
use crate::http::streams::LiveStreams;

pub mod api_keys;
pub mod audit;
pub mod community;
pub mod documents;
pub mod jobs;
pub mod openapi;
pub mod operations;
pub mod prices;
pub mod tenants;
pub mod users;

/// Every bounded context's routes, in the order they are documented.
pub const CONTEXTS: &[fn() -> Routes] = &[
    users::routes,
    api_keys::routes,
    jobs::routes,
    documents::routes,
    community::routes,
    audit::routes,
    tenants::routes,
    prices::routes,
    operations::routes,
];

/// What handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Every context's command handlers.
    pub write: WriteSide,
    /// The primary: the event store, and reads that must see the latest state (claims).
    pub pool: PgPool,
    /// Where queries read read models: a streaming replica when `database.read_url` is set,
    /// otherwise the primary.
    pub read_pool: PgPool,
    /// Credentials checks.
    pub auth: Arc<Authenticator>,
    /// The relay (for its checkpoint in lag reports).
    pub relay: Relay,
    /// NATS, for readiness and live updates.
    pub nats: async_nats::Client,
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// Rate limits (`None` when switched off); the per-principal ones are applied by `Caller`.
    pub limits: Option<Arc<RateLimits>>,
    /// Per-member limits on writing posts and comments (`None` when rate limits are off).
    pub write_limits: Option<Arc<WriteLimits>>,
    /// Open live streams, capped.
    pub live_streams: Arc<LiveStreams>,
    /// The process's one subscription to job events, shared by every live job stream.
    pub live_jobs: Arc<projections::live::LiveHub<projections::jobs::live::JobUpdates>>,
    /// The process's one subscription to post and comment events, shared by every live
    /// community stream.
    pub live_community: Arc<projections::live::LiveHub<projections::community::live::NewWriting>>,
    /// The process's one subscription to price series events, shared by every live bars stream.
    pub live_prices: Arc<projections::live::LiveHub<projections::prices::live::BarUpdates>>,
    /// The price provider's circuit breaker, when this process runs the importer (for metrics).
    pub price_breaker: Option<Arc<commands::prices::provider::Breaker>>,
}

/// One context's routes with their documentation, split by side.
pub struct Routes {
    tags: Vec<Tag>,
    commands: OpenApiRouter<AppState>,
    queries: OpenApiRouter<AppState>,
    public: OpenApiRouter<AppState>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let paths = |router: &OpenApiRouter<AppState>| {
            router
                .get_openapi()
                .paths
                .paths
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        f.debug_struct("Routes")
            .field("commands", &paths(&self.commands))
            .field("queries", &paths(&self.queries))
            .field("public", &paths(&self.public))
            .finish()
    }
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

impl Routes {
    /// No routes yet.
    pub fn new() -> Self {
        Self {
            tags: Vec::new(),
            commands: OpenApiRouter::new(),
            queries: OpenApiRouter::new(),
            public: OpenApiRouter::new(),
        }
    }

    /// Describes a tag the context's operations use (shown as a section of the docs).
    pub fn tag(mut self, name: &str, description: &str) -> Self {
        self.tags.push(
            TagBuilder::new()
                .name(name)
                .description(Some(description))
                .build(),
        );
        self
    }

    /// A command route (it appends events) that needs `action`.
    pub fn command(
        mut self,
        action: impl Into<Action>,
        routes: UtoipaMethodRouter<AppState>,
    ) -> Self {
        self.commands = self.commands.routes(needs(action.into(), routes));
        self
    }

    /// A query route (it reads projections) that needs `action`.
    pub fn query(
        mut self,
        action: impl Into<Action>,
        routes: UtoipaMethodRouter<AppState>,
    ) -> Self {
        self.queries = self.queries.routes(needs(action.into(), routes));
        self
    }

    /// A query route anyone may call without credentials (a tenant's public pages): served
    /// with the queries, held to the per-address limits of requests without credentials, and
    /// documented as such (`x-anonymous`).
    pub fn anonymous(mut self, routes: UtoipaMethodRouter<AppState>) -> Self {
        let (schemas, mut paths, router) = routes;
        for item in paths.paths.values_mut() {
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                let extension = ExtensionsBuilder::new().add("x-anonymous", true).build();
                match &mut operation.extensions {
                    Some(extensions) => extensions.merge(extension),
                    None => operation.extensions = Some(extension),
                }
            }
        }
        self.queries = self.queries.routes((schemas, paths, router));
        self
    }

    /// A route anyone may call, served by every process (health, metrics).
    pub fn public(mut self, routes: UtoipaMethodRouter<AppState>) -> Self {
        self.public = self.public.routes(routes);
        self
    }
}

/// Records `action` on every operation of `routes` as `x-action`.
fn needs(action: Action, routes: UtoipaMethodRouter<AppState>) -> UtoipaMethodRouter<AppState> {
    let (schemas, mut paths, router) = routes;
    for item in paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            mark(operation, action);
        }
    }
    (schemas, paths, router)
}

fn mark(operation: &mut Operation, action: Action) {
    let extension = ExtensionsBuilder::new()
        .add("x-action", action.name())
        .build();
    match &mut operation.extensions {
        Some(extensions) => extensions.merge(extension),
        None => operation.extensions = Some(extension),
    }
}

/// Which sides a process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sides {
    /// Command routes.
    pub commands: bool,
    /// Query routes.
    pub queries: bool,
}

/// Every route of `contexts` that `sides` asks for, with health, metrics and the document,
/// behind the hardening layers; and the OpenAPI document of exactly those routes. Health,
/// metrics and the document are never rate limited: a flood of other requests must not take an
/// instance out of its load balancer.
pub fn router(state: AppState, contexts: Vec<Routes>, sides: Sides) -> Router {
    let http = state.settings.http.clone();
    let address_limits = AddressLimits {
        limits: state.limits.clone(),
        trusted_proxies: http.trusted_proxies().into(),
    };
    let (api, public) = assemble(contexts, sides);
    let (api, mut document) = api.split_for_parts();
    let (public, public_document) = public.split_for_parts();
    document.merge(public_document);
    let document = openapi::complete(
        document,
        openapi::Limits {
            max_page_size: state.settings.queries.max_page_size,
            upload_max_bytes: state.settings.documents.max_bytes,
            text: state.settings.community.text_limits(),
        },
    );
    let api = api
        .fallback(|| async {
            ApiError::NotFound {
                code: "route_not_found",
                detail: "no such route; see /api/v1/openapi.json".to_owned(),
            }
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            address_limits,
            limits::per_address,
        ));
    public
        .merge(openapi::router(document))
        .merge(api)
        .layer(axum::extract::DefaultBodyLimit::max(http.body_limit_bytes))
        .layer(middleware::from_fn_with_state(
            Duration::from_millis(http.request_timeout_ms),
            security::timeout,
        ))
        .layer(security::cors(&http))
        .layer(middleware::from_fn_with_state(http.hsts, security::headers))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// The OpenAPI document of the routes of `contexts` that `sides` asks for, exactly as
/// [`router`] serves it with settings that have these `limits`.
pub fn document(contexts: Vec<Routes>, sides: Sides, limits: openapi::Limits) -> serde_json::Value {
    let (api, public) = assemble(contexts, sides);
    let mut document = api.into_openapi();
    document.merge(public.into_openapi());
    openapi::complete(document, limits)
}

/// The protected routes (with the document's frame and every context's tags) and the public
/// ones.
fn assemble(
    contexts: Vec<Routes>,
    sides: Sides,
) -> (OpenApiRouter<AppState>, OpenApiRouter<AppState>) {
    let mut api = OpenApiRouter::with_openapi(openapi::base());
    let mut public = OpenApiRouter::new();
    for routes in contexts {
        api.get_openapi_mut()
            .tags
            .get_or_insert_with(Vec::new)
            .extend(routes.tags);
        if sides.commands {
            api = api.merge(routes.commands);
        }
        if sides.queries {
            api = api.merge(routes.queries);
        }
        public = public.merge(routes.public);
    }
    (api, public)
}

/// Every registered context's routes.
pub fn contexts() -> Vec<Routes> {
    CONTEXTS.iter().map(|routes| routes()).collect()
}

/// The request's id (accepted from `x-request-id` when well-formed, generated otherwise).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

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
