//! `nats`: the NATS connection and the JetStream stream every event is published to.

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};

/// The NATS connection and the events stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsSettings {
    /// `nats://host:port` (env `NATS_URL`).
    pub url: Secret,
    /// The JetStream stream holding all events.
    pub stream: String,
    /// Subject prefix of that stream.
    pub subject_prefix: String,
    /// Re-publishes of the same event within this window are dropped by JetStream.
    pub duplicate_window_secs: u64,
    /// How long JetStream keeps events (Postgres keeps them forever); 0 = forever.
    pub max_age_secs: u64,
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            url: Secret::default(),
            stream: "EVENTS".to_owned(),
            subject_prefix: "events".to_owned(),
            duplicate_window_secs: 120,
            max_age_secs: 30 * 24 * 3600,
        }
    }
}

impl NatsSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let url = self.url.expose();
        if url.is_empty() {
            return Err(ConfigError::invalid("nats.url (NATS_URL)", "is required"));
        }
        if !(url.starts_with("nats://") || url.starts_with("tls://")) {
            return Err(ConfigError::invalid(
                "nats.url (NATS_URL)",
                "must start with nats:// or tls://",
            ));
        }
        // Both end up as tokens of every subject and consumer name.
        let token = domain::event::is_subject_token;
        if !token(&self.stream) {
            return Err(ConfigError::invalid(
                "nats.stream",
                "must be letters, digits, '-' or '_'",
            ));
        }
        if !token(&self.subject_prefix) {
            return Err(ConfigError::invalid(
                "nats.subject_prefix",
                "must be letters, digits, '-' or '_'",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::valid;

    #[test]
    fn a_stream_name_that_is_no_subject_token_is_named() {
        let mut settings = valid();
        settings.nats.stream = "bad.name".into();
        let error = settings.validate().expect_err("refused").to_string();
        assert!(error.contains("nats.stream"), "{error}");
    }
}
