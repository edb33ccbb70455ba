//! `rate_limit`: requests per client address before authentication, per principal after.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Rate limits per minute: per client address before authentication (every request, requests
/// without credentials, refused credentials), per principal after it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Switch off for load tests.
    pub enabled: bool,
    /// Command requests (POST, PUT, PATCH, DELETE) per principal per minute.
    pub commands_per_minute: u32,
    /// Query requests (GET) per principal per minute.
    pub queries_per_minute: u32,
    /// Requests without credentials per client address per minute.
    pub anonymous_per_minute: u32,
    /// Every request (health excepted) per client address per minute, before authentication.
    pub per_ip_per_minute: u32,
    /// Refused credentials per client address per minute; beyond it the address is answered
    /// 429 without its credentials being looked up.
    pub refused_credentials_per_minute: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            commands_per_minute: 600,
            queries_per_minute: 3_000,
            anonymous_per_minute: 120,
            per_ip_per_minute: 6_000,
            refused_credentials_per_minute: 30,
        }
    }
}

impl RateLimitSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.commands_per_minute == 0
            || self.queries_per_minute == 0
            || self.anonymous_per_minute == 0
            || self.per_ip_per_minute == 0
            || self.refused_credentials_per_minute == 0
        {
            return Err(ConfigError::invalid(
                "rate_limit.*_per_minute",
                "must be positive (set rate_limit.enabled = false to switch limits off)",
            ));
        }
        Ok(())
    }
}
