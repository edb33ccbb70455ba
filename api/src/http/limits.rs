//! Rate limits keyed on what is proven.
//!
//! Before authentication only the client's address is known, so that is what the first limits
//! key on: every request from one address ([`RateLimitSettings::per_ip_per_minute`]), requests
//! without credentials, and refused credentials. An address over its refused-credentials limit
//! is answered 429 before any credential is looked up, so made-up keys cost no event-store read.
//! After authentication the principal is proven and its own command and query limits apply
//! ([`RateLimits::principal`], called by the `Caller` extractor). A client sending a new made-up
//! key on every request therefore meets its address's limits, never a fresh bucket.
//!
//! The client's address is the TCP peer, or, when the peer is one of the configured trusted
//! proxies, the nearest address in `X-Forwarded-For` that is not itself a trusted proxy.
//!
//! Every limited response says where the caller stands (`RateLimit-Limit`,
//! `RateLimit-Remaining`, `RateLimit-Reset`): the principal's budget once it is proven, the
//! address's before.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::identity::Principal;
use domain::tenants::TenantSettings;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::{StateInformationMiddleware, StateSnapshot};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{CommunitySettings, RateLimitSettings};
use crate::http::auth::credential_present;
use crate::http::error::ApiError;

/// The client's address, as decided by [`client_address`]; set on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// An address or network (`10.0.0.0/8`, `::1`) whose requests may name the client in
/// `X-Forwarded-For`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy {
    network: IpAddr,
    prefix: u8,
}

impl FromStr for TrustedProxy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = text.split_once('/').unwrap_or((text, ""));
        let network: IpAddr = address
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address or network"))?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            bits
        } else {
            prefix
                .parse::<u8>()
                .ok()
                .filter(|prefix| *prefix <= bits)
                .ok_or_else(|| format!("`{text}` has a prefix length outside 0..={bits}"))?
        };
        Ok(Self { network, prefix })
    }
}

impl TrustedProxy {
    /// Whether `address` lies in this network.
    pub fn contains(&self, address: IpAddr) -> bool {
        let masked = |bits: u128, width: u32| {
            let host_bits = width - u32::from(self.prefix);
            bits.checked_shr(host_bits).unwrap_or(0)
        };
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                masked(u32::from(network).into(), 32) == masked(u32::from(address).into(), 32)
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                masked(u128::from(network), 128) == masked(u128::from(address), 128)
            }
            _ => false,
        }
    }
}

/// The client's address: `peer`, unless `peer` is a trusted proxy, then the right-most address
/// of `X-Forwarded-For` that is not a trusted proxy (each proxy appends the address it saw).
/// Hops are read from the right, the end the proxies wrote: the first one that is not a valid
/// address stops the walk at the last trusted hop, so nothing a client wrote to the left of it
/// can name the client. IPv4-mapped IPv6 addresses count as their IPv4 address.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[TrustedProxy]) -> IpAddr {
    let is_trusted = |address: IpAddr| trusted.iter().any(|proxy| proxy.contains(address));
    let mut client = peer.to_canonical();
    if !is_trusted(client) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    for hop in hops.iter().rev() {
        let Ok(address) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = address.to_canonical();
        if !is_trusted(client) {
            break;
        }
    }
    client
}

type Limiter<K> = DefaultKeyedRateLimiter<K, StateInformationMiddleware>;

/// Where a caller stands against the limit that applied to its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    limit: u32,
    remaining: u32,
    reset_secs: u64,
}

impl Budget {
    fn of(snapshot: &StateSnapshot) -> Self {
        let quota = snapshot.quota();
        let remaining = snapshot.remaining_burst_capacity();
        let used = quota.burst_size().get().saturating_sub(remaining);
        Self {
            limit: quota.burst_size().get(),
            remaining,
            reset_secs: (quota.replenish_interval() * used).as_secs_f64().ceil() as u64,
        }
    }

    fn exhausted(quota: &Quota, wait: Duration) -> Self {
        Self {
            limit: quota.burst_size().get(),
            remaining: 0,
            reset_secs: wait.as_secs() + 1,
        }
    }

    /// Writes the `RateLimit-*` headers, unless the response already has them.
    pub fn write(self, headers: &mut axum::http::HeaderMap) {
        for (name, value) in [
            (RATE_LIMIT_LIMIT, u64::from(self.limit)),
            (RATE_LIMIT_REMAINING, u64::from(self.remaining)),
            (RATE_LIMIT_RESET, self.reset_secs),
        ] {
            headers
                .entry(HeaderName::from_static(name))
                .or_insert(HeaderValue::from(value));
        }
    }
}

/// The size of the caller's budget.
pub const RATE_LIMIT_LIMIT: &str = "ratelimit-limit";
/// Requests left in it now.
pub const RATE_LIMIT_REMAINING: &str = "ratelimit-remaining";
/// Seconds until it is full again.
pub const RATE_LIMIT_RESET: &str = "ratelimit-reset";

/// Carries the budget the request was held to from where it is known (the address middleware,
/// then the `Caller` extractor) to the response.
#[derive(Debug, Clone, Default)]
pub struct BudgetSlot(Arc<Mutex<Option<Budget>>>);

impl BudgetSlot {
    /// Records `budget` as the one the response reports.
    pub fn set(&self, budget: Budget) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(budget);
    }

    fn get(&self) -> Option<Budget> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Per-principal limiters of tenants with a rate of their own, by (commands?, rate per minute).
type TenantRates = HashMap<(bool, u32), Arc<Limiter<String>>>;

/// Every limit of one process.
#[derive(Debug)]
pub struct RateLimits {
    per_ip: Limiter<IpAddr>,
    anonymous: Limiter<IpAddr>,
    refused: Limiter<IpAddr>,
    /// Addresses over their refused-credentials limit, and until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    commands: Limiter<String>,
    queries: Limiter<String>,
    /// The limiters of tenants whose settings set their own rate, one per (commands?, rate).
    tenant_rates: Mutex<TenantRates>,
    requests: AtomicU64,
}

impl RateLimits {
    /// Every this many requests, buckets that are full again are dropped, so a flood from many
    /// addresses cannot grow memory without bound.
    const SWEEP_EVERY: u64 = 10_000;

    /// Limits as configured; `None` when switched off.
    pub fn new(settings: &RateLimitSettings) -> Option<Arc<Self>> {
        settings.enabled.then(|| {
            Arc::new(Self {
                per_ip: per_minute(settings.per_ip_per_minute),
                anonymous: per_minute(settings.anonymous_per_minute),
                refused: per_minute(settings.refused_credentials_per_minute),
                blocked: Mutex::new(HashMap::new()),
                commands: per_minute(settings.commands_per_minute),
                queries: per_minute(settings.queries_per_minute),
                tenant_rates: Mutex::new(HashMap::new()),
                requests: AtomicU64::new(0),
            })
        })
    }

    fn sweep_now_and_then(&self) {
        if self.requests.fetch_add(1, Ordering::Relaxed) % Self::SWEEP_EVERY
            == Self::SWEEP_EVERY - 1
        {
            for limiter in [&self.per_ip, &self.anonymous, &self.refused] {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
            let tenant_rates: Vec<_> = self.rates().values().cloned().collect();
            for limiter in [&self.commands, &self.queries]
                .into_iter()
                .chain(tenant_rates.iter().map(|limiter| &**limiter))
            {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
            let now = Instant::now();
            self.blocked_addresses().retain(|_, until| *until > now);
        }
    }

    fn rates(&self) -> std::sync::MutexGuard<'_, TenantRates> {
        self.tenant_rates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn blocked_addresses(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.blocked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Before authentication: 429 while `client` is over its refused-credentials limit.
    ///
    /// # Errors
    /// [`ApiError::TooManyRequests`].
    pub fn before_authentication(&self, client: IpAddr) -> Result<(), ApiError> {
        let until = self.blocked_addresses().get(&client).copied();
        match until.map(|until| until.saturating_duration_since(Instant::now())) {
            Some(wait) if !wait.is_zero() => Err(too_many(wait)),
            _ => Ok(()),
        }
    }

    /// After refused credentials: counts the refusal against `client`, blocking it once over
    /// the limit.
    pub fn refused(&self, client: IpAddr) {
        if let Err(not_until) = self.refused.check_key(&client) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            self.blocked_addresses()
                .insert(client, Instant::now() + wait.max(Duration::from_secs(1)));
        }
    }

    /// On a route anyone may call ([`crate::routes::Routes::anonymous`]): a request carrying
    /// credentials the route never checks is still a request without proven credentials, and
    /// counts against its address's limit of those (the address middleware counted only the
    /// ones carrying none).
    ///
    /// # Errors
    /// [`ApiError::TooManyRequests`].
    pub fn anonymous_route(&self, client: IpAddr, headers: &HeaderMap) -> Result<(), ApiError> {
        if credential_present(headers) {
            check(&self.anonymous, &client)?;
        }
        Ok(())
    }

    /// After authentication: the principal's limit for commands or queries (its tenant's own
    /// rate when its settings set one, the server's otherwise); the budget left.
    ///
    /// # Errors
    /// [`ApiError::TooManyRequests`].
    pub fn principal(
        &self,
        principal: &Principal,
        settings: &TenantSettings,
        method: &Method,
    ) -> Result<Budget, ApiError> {
        let query = method == Method::GET || method == Method::HEAD;
        let (server, own) = if query {
            (&self.queries, settings.queries_per_minute)
        } else {
            (&self.commands, settings.commands_per_minute)
        };
        let key = format!("{}/{}", principal.tenant, principal.id);
        match own {
            None => check(server, &key),
            Some(rate) => {
                let limiter = self
                    .rates()
                    .entry((!query, rate))
                    .or_insert_with(|| Arc::new(per_minute(rate)))
                    .clone();
                check(&limiter, &key)
            }
        }
    }
}

fn per_minute<K: std::hash::Hash + Eq + Clone>(n: u32) -> Limiter<K> {
    let quota = Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
    RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>()
}

fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: &Limiter<K>,
    key: &K,
) -> Result<Budget, ApiError> {
    limiter
        .check_key(key)
        .map(|snapshot| Budget::of(&snapshot))
        .map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::TooManyRequests {
                retry_after_secs: wait.as_secs() + 1,
                budget: Some(Budget::exhausted(&not_until.quota(), wait)),
            }
        })
}

fn too_many(wait: Duration) -> ApiError {
    ApiError::TooManyRequests {
        retry_after_secs: wait.as_secs() + 1,
        budget: None,
    }
}

/// What the address middleware needs.
#[derive(Debug, Clone)]
pub struct AddressLimits {
    /// The limits; `None` when switched off.
    pub limits: Option<Arc<RateLimits>>,
    /// Proxies allowed to name the client.
    pub trusted_proxies: Arc<[TrustedProxy]>,
}

/// Records the client's address on the request and applies the per-address limits: every
/// request, and requests without credentials.
pub async fn per_address(
    State(config): State<AddressLimits>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(address)| {
            address.ip()
        });
    let client = client_address(peer, request.headers(), &config.trusted_proxies);
    request.extensions_mut().insert(ClientIp(client));
    let Some(limits) = &config.limits else {
        return next.run(request).await;
    };
    limits.sweep_now_and_then();
    let checked = check(&limits.per_ip, &client).and_then(|budget| {
        if credential_present(request.headers()) {
            Ok(budget)
        } else {
            check(&limits.anonymous, &client)
        }
    });
    let slot = BudgetSlot::default();
    match checked {
        Ok(budget) => slot.set(budget),
        Err(limited) => return limited.into_response(),
    }
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    // A 429 from elsewhere (refused credentials, live streams) carries its own headers or none:
    // the address's budget, with requests left, would contradict it.
    if response.status() != axum::http::StatusCode::TOO_MANY_REQUESTS {
        if let Some(budget) = slot.get() {
            budget.write(response.headers_mut());
        }
    }
    response
}

/// Per-member limits on writing in the community: posts and comments a minute, so one member
/// cannot flood the others' pages. Per process, like every rate limit here.
#[derive(Debug)]
pub struct WriteLimits {
    posts: Limiter<String>,
    comments: Limiter<String>,
    posts_per_minute: u32,
    comments_per_minute: u32,
}

impl WriteLimits {
    /// Limits as configured; `None` when rate limits are switched off.
    pub fn new(rate: &RateLimitSettings, community: &CommunitySettings) -> Option<Arc<Self>> {
        let per_minute = |n: u32| {
            RateLimiter::keyed(Quota::per_minute(
                NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN),
            ))
            .with_middleware::<StateInformationMiddleware>()
        };
        rate.enabled.then(|| {
            Arc::new(Self {
                posts: per_minute(community.posts_per_minute),
                comments: per_minute(community.comments_per_minute),
                posts_per_minute: community.posts_per_minute,
                comments_per_minute: community.comments_per_minute,
            })
        })
    }

    /// Counts a post by `principal`.
    ///
    /// # Errors
    /// [`ApiError::WriteLimited`] once over `community.posts_per_minute`.
    pub fn post(&self, principal: &Principal) -> Result<(), ApiError> {
        Self::count(&self.posts, principal, "posts", self.posts_per_minute)
    }

    /// Counts a comment by `principal`.
    ///
    /// # Errors
    /// [`ApiError::WriteLimited`] once over `community.comments_per_minute`.
    pub fn comment(&self, principal: &Principal) -> Result<(), ApiError> {
        Self::count(
            &self.comments,
            principal,
            "comments",
            self.comments_per_minute,
        )
    }

    fn count(
        limiter: &Limiter<String>,
        principal: &Principal,
        what: &'static str,
        per_minute: u32,
    ) -> Result<(), ApiError> {
        let key = format!("{}/{}", principal.tenant, principal.account);
        limiter.check_key(&key).map(|_| ()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::WriteLimited {
                what,
                per_minute,
                retry_after_secs: wait.as_secs() + 1,
            }
        })
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> Vec<TrustedProxy> {
        list.iter().map(|p| p.parse().unwrap()).collect()
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().unwrap());
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_contain_exactly_their_addresses() {
        let net: TrustedProxy = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.255.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(!net.contains(ip("::1")));
        let all: TrustedProxy = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("192.0.2.1")));
        let one: TrustedProxy = "::1".parse().unwrap();
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
        assert!("10.0.0.0/33".parse::<TrustedProxy>().is_err());
        assert!("proxy.local".parse::<TrustedProxy>().is_err());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let headers = forwarded("198.51.100.7");
        assert_eq!(
            client_address(ip("203.0.113.9"), &headers, &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers, &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8"]);
        // A client cannot pick its address by sending its own X-Forwarded-For first.
        let headers = forwarded("1.2.3.4, 198.51.100.7, 10.0.0.5");
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers, &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn a_client_cannot_name_itself_through_an_unreadable_hop() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let headers = forwarded("6.6.6.6, junk, 198.51.100.7");
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers, &trusted),
            ip("198.51.100.7")
        );
        let headers = forwarded("6.6.6.6, junk");
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers, &trusted),
            ip("10.0.0.2"),
            "the last trusted hop"
        );
        let mapped: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        assert_eq!(
            client_address(mapped, &forwarded("198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn an_address_over_its_refusals_is_held_back_before_authentication() {
        let settings = RateLimitSettings {
            refused_credentials_per_minute: 2,
            ..RateLimitSettings::default()
        };
        let limits = RateLimits::new(&settings).unwrap();
        let client = ip("192.0.2.10");
        for _ in 0..2 {
            assert!(limits.before_authentication(client).is_ok());
            limits.refused(client);
        }
        limits.refused(client);
        assert!(matches!(
            limits.before_authentication(client),
            Err(ApiError::TooManyRequests { .. })
        ));
        assert!(limits.before_authentication(ip("192.0.2.11")).is_ok());
    }
}
