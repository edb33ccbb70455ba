//! `prices`: the market-data provider prices are imported from, and the importer that runs
//! the imports (timeouts, attempts, backoff, circuit breaker).

use std::time::Duration;

use commands::prices::importer::ImporterSettings;
use commands::prices::provider::ProviderSettings;
use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};

/// Price imports.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriceSettings {
    /// The provider's name, recorded as the source of the bars it reports.
    pub provider: String,
    /// The provider's base URL (`{url}/time_series` is asked); empty: no importer runs, and
    /// imports wait (env `APP_PRICES__PROVIDER_URL`).
    pub provider_url: String,
    /// The provider's API key (env `APP_PRICES__PROVIDER_API_KEY`).
    pub provider_api_key: Secret,
    /// The longest one request to the provider may take.
    pub request_timeout_ms: u64,
    /// The most bars one request asks for (1 to 5000).
    pub page_size: u32,
    /// Attempts per import before it is abandoned (1 to 100).
    pub max_attempts: u32,
    /// Wait after the first failed attempt; doubled per attempt.
    pub retry_base_delay_ms: u64,
    /// Longest wait between attempts.
    pub retry_max_delay_ms: u64,
    /// How long an attempt holds its import before another importer takes it over.
    pub lease_secs: u64,
    /// Outages in a row (timeouts, 5xx, 429) that open the provider's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker lets no request through before one probe.
    pub breaker_cooldown_ms: u64,
    /// How often the importer looks for due imports.
    pub poll_ms: u64,
}

impl Default for PriceSettings {
    fn default() -> Self {
        Self {
            provider: "twelvedata".to_owned(),
            provider_url: String::new(),
            provider_api_key: Secret::default(),
            request_timeout_ms: 10_000,
            page_size: 5_000,
            max_attempts: 5,
            retry_base_delay_ms: 5_000,
            retry_max_delay_ms: 600_000,
            lease_secs: 300,
            breaker_failures: 5,
            breaker_cooldown_ms: 60_000,
            poll_ms: 1_000,
        }
    }
}

impl PriceSettings {
    /// The provider's client settings, when a provider is configured.
    pub fn provider(&self) -> Option<ProviderSettings> {
        (!self.provider_url.trim().is_empty()).then(|| ProviderSettings {
            name: self.provider.clone(),
            base_url: self.provider_url.trim().to_owned(),
            api_key: self.provider_api_key.expose().to_owned(),
            timeout: Duration::from_millis(self.request_timeout_ms),
            page_size: self.page_size,
        })
    }

    /// The importer's settings.
    pub fn importer(&self) -> ImporterSettings {
        ImporterSettings {
            poll: Duration::from_millis(self.poll_ms),
            lease: Duration::from_secs(self.lease_secs),
            max_attempts: self.max_attempts,
            retry_base: Duration::from_millis(self.retry_base_delay_ms),
            retry_max: Duration::from_millis(self.retry_max_delay_ms),
            breaker_failures: self.breaker_failures,
            breaker_cooldown: Duration::from_millis(self.breaker_cooldown_ms),
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let name_ok = (1..=40).contains(&self.provider.len())
            && self
                .provider
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(ConfigError::invalid(
                "prices.provider",
                "1 to 40 of a-z, 0-9, '-'",
            ));
        }
        let url = self.provider_url.trim();
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::invalid(
                "prices.provider_url",
                "an http:// or https:// URL, or empty",
            ));
        }
        if !(1..=5_000).contains(&self.page_size) {
            return Err(ConfigError::invalid("prices.page_size", "1 to 5000"));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(ConfigError::invalid("prices.max_attempts", "1 to 100"));
        }
        if self.retry_base_delay_ms == 0 || self.retry_base_delay_ms > self.retry_max_delay_ms {
            return Err(ConfigError::invalid(
                "prices.retry_base_delay_ms / prices.retry_max_delay_ms",
                "0 < retry_base_delay_ms <= retry_max_delay_ms",
            ));
        }
        // Bounded, so that no lease, timeout or retry time overflows a timestamp.
        let bounded = [
            (
                "prices.request_timeout_ms",
                self.request_timeout_ms,
                300_000,
            ),
            ("prices.lease_secs", self.lease_secs, 86_400),
            (
                "prices.retry_max_delay_ms",
                self.retry_max_delay_ms,
                86_400_000,
            ),
            (
                "prices.breaker_cooldown_ms",
                self.breaker_cooldown_ms,
                86_400_000,
            ),
            ("prices.poll_ms", self.poll_ms, 600_000),
        ];
        if let Some((setting, _, max)) = bounded.iter().find(|(_, value, max)| value > max) {
            return Err(ConfigError::invalid(setting, format!("at most {max}")));
        }
        if self.request_timeout_ms >= self.lease_secs.saturating_mul(1_000) {
            return Err(ConfigError::invalid(
                "prices.request_timeout_ms / prices.lease_secs",
                "a request must end well within an attempt's lease",
            ));
        }
        let positive = [
            ("prices.request_timeout_ms", self.request_timeout_ms),
            ("prices.lease_secs", self.lease_secs),
            ("prices.breaker_failures", u64::from(self.breaker_failures)),
            ("prices.breaker_cooldown_ms", self.breaker_cooldown_ms),
            ("prices.poll_ms", self.poll_ms),
        ];
        if let Some((setting, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::invalid(setting, "must be positive"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_value_is_named() {
        type Spoil = fn(&mut PriceSettings);
        let cases: [(Spoil, &str); 7] = [
            (|s| s.provider = "Twelve Data".to_owned(), "prices.provider"),
            (
                |s| s.provider_url = "ftp://x".to_owned(),
                "prices.provider_url",
            ),
            (|s| s.page_size = 0, "prices.page_size"),
            (
                |s| s.retry_base_delay_ms = 700_000,
                "prices.retry_base_delay_ms",
            ),
            (|s| s.lease_secs = 0, "prices.lease_secs"),
            (|s| s.lease_secs = 1 << 40, "prices.lease_secs"),
            (
                |s| s.request_timeout_ms = 300_000,
                "prices.request_timeout_ms",
            ),
        ];
        for (spoil, setting) in cases {
            let mut settings = PriceSettings::default();
            spoil(&mut settings);
            let error = settings.validate().expect_err(setting).to_string();
            assert!(error.contains(setting), "{error}");
        }
        assert!(PriceSettings::default().validate().is_ok());
        assert!(
            PriceSettings::default().provider().is_none(),
            "no provider by default"
        );
    }
}
