//! `http`: the listener and what every request is held to.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::http::limits::TrustedProxy;

/// The HTTP listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Address to bind; `127.0.0.1` unless deliberately exposed.
    pub host: IpAddr,
    /// Port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is answered with a timeout.
    pub request_timeout_ms: u64,
    /// Browser origins allowed by CORS (exact matches; never `*`).
    pub cors_allowed_origins: Vec<String>,
    /// Send `Strict-Transport-Security`: set when clients reach the API over TLS (at a proxy).
    pub hsts: bool,
    /// Reverse proxies (addresses or networks, `10.0.0.0/8`) whose `X-Forwarded-For` names the
    /// client; from any other peer the header is ignored. Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
    /// Live (SSE) streams one principal may hold open at once.
    pub live_streams_per_principal: usize,
    /// Live (SSE) streams one process serves at once.
    pub live_streams_per_process: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 8080,
            body_limit_bytes: 64 * 1024,
            request_timeout_ms: 30_000,
            cors_allowed_origins: Vec::new(),
            hsts: false,
            trusted_proxies: Vec::new(),
            live_streams_per_principal: 4,
            live_streams_per_process: 256,
        }
    }
}

impl HttpSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self
            .cors_allowed_origins
            .iter()
            .any(|origin| origin == "*" || origin.parse::<http::HeaderValue>().is_err())
        {
            return Err(ConfigError::invalid(
                "http.cors_allowed_origins",
                "must list exact origins, never '*'",
            ));
        }
        if let Some(error) = self
            .trusted_proxies
            .iter()
            .find_map(|proxy| proxy.parse::<TrustedProxy>().err())
        {
            return Err(ConfigError::invalid("http.trusted_proxies", &error));
        }
        if self.live_streams_per_principal == 0 || self.live_streams_per_process == 0 {
            return Err(ConfigError::invalid(
                "http.live_streams_*",
                "must be positive",
            ));
        }
        Ok(())
    }

    /// The trusted proxies, parsed (validated at load).
    pub fn trusted_proxies(&self) -> Vec<TrustedProxy> {
        self.trusted_proxies
            .iter()
            .filter_map(|proxy| proxy.parse().ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_origin_is_refused() {
        let mut http = HttpSettings::default();
        assert!(http.validate().is_ok());
        http.cors_allowed_origins = vec!["https://app.example".into(), "*".into()];
        let error = http.validate().expect_err("refused").to_string();
        assert!(error.contains("http.cors_allowed_origins"), "{error}");
    }
}
