//! HTTP hardening applied to every route: security headers, CORS, request timeouts and rate
//! limits. Authentication and authorization live in `auth` and `extract::Caller`.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::{HttpSettings, RateLimitSettings};
use crate::http::auth::credential_fingerprint;
use crate::http::error::ApiError;

/// The CSP: everything from this origin only; Swagger UI needs inline styles and data: images.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; font-src 'self'; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Adds the security headers to every response.
pub async fn headers(State(hsts): State<bool>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::CONTENT_SECURITY_POLICY, CSP);
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::CACHE_CONTROL, "no-store");
    if hsts {
        set(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    response
}

/// CORS for the configured origins only (an empty list allows no browser origin).
pub fn cors(settings: &HttpSettings) -> CorsLayer {
    let origins: Vec<HeaderValue> = settings
        .cors_allowed_origins
        .iter()
        .filter_map(|origin| origin.parse().ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("x-correlation-id"),
            HeaderName::from_static("x-consistency-token"),
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(Duration::from_secs(600))
}

/// Abandons requests that take longer than the configured timeout.
pub async fn timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// Per-principal (or, without credentials, per-IP) rate limits, one bucket set per class.
#[derive(Debug)]
pub struct RateLimits {
    commands: DefaultKeyedRateLimiter<String>,
    queries: DefaultKeyedRateLimiter<String>,
    anonymous: DefaultKeyedRateLimiter<String>,
    requests: AtomicU64,
}

impl RateLimits {
    /// Every this many requests, buckets that are full again are dropped, so that a flood of
    /// distinct (say, random invalid) credentials cannot grow memory without bound.
    const SWEEP_EVERY: u64 = 10_000;

    fn sweep_now_and_then(&self) {
        if self.requests.fetch_add(1, Ordering::Relaxed) % Self::SWEEP_EVERY
            == Self::SWEEP_EVERY - 1
        {
            for limiter in [&self.commands, &self.queries, &self.anonymous] {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
    }
}

impl RateLimits {
    /// Limits as configured; `None` when switched off.
    pub fn new(settings: &RateLimitSettings) -> Option<Arc<Self>> {
        let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        settings.enabled.then(|| {
            Arc::new(Self {
                commands: RateLimiter::keyed(per_minute(settings.commands_per_minute)),
                queries: RateLimiter::keyed(per_minute(settings.queries_per_minute)),
                anonymous: RateLimiter::keyed(per_minute(settings.anonymous_per_minute)),
                requests: AtomicU64::new(0),
            })
        })
    }
}

/// Answers 429 with `Retry-After` once the caller's bucket for this class is empty.
pub async fn rate_limit(
    State(limits): State<Option<Arc<RateLimits>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(limits) = limits else {
        return next.run(request).await;
    };
    limits.sweep_now_and_then();
    let (limiter, key) = match credential_fingerprint(request.headers()) {
        Some(principal) if request.method() == Method::GET || request.method() == Method::HEAD => {
            (&limits.queries, principal)
        }
        Some(principal) => (&limits.commands, principal),
        None => {
            let ip = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| address.ip().to_string())
                .unwrap_or_default();
            (&limits.anonymous, ip)
        }
    };
    match limiter.check_key(&key) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::TooManyRequests {
                retry_after_secs: wait.as_secs() + 1,
            }
            .into_response()
        }
    }
}
