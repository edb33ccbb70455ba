//! `nats`: the NATS connection and the JetStream stream every event is published to.

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};

/// The NATS connection and the events stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsSettings {
    /// `nats://host:port`, or a comma-separated list of a cluster's servers (env `NATS_URL`).
    pub url: Secret,
    /// The JetStream stream holding all events.
    pub stream: String,
    /// Subject prefix of that stream.
    pub subject_prefix: String,
    /// Re-publishes of the same event within this window are dropped by JetStream.
    pub duplicate_window_secs: u64,
    /// How long JetStream keeps events (Postgres keeps them forever); 0 = forever.
    pub max_age_secs: u64,
    /// Copies of the stream and its consumers JetStream keeps: 1 on a single server, 3 (or 5) on
    /// a cluster so that losing a node loses nothing. An existing stream is updated to it.
    pub replicas: usize,
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            url: Secret::default(),
            stream: "EVENTS".to_owned(),
            subject_prefix: "events".to_owned(),
            duplicate_window_secs: 120,
            max_age_secs: 30 * 24 * 3600,
            replicas: 1,
        }
    }
}

impl NatsSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let url = self.url.expose();
        if url.is_empty() {
            return Err(ConfigError::invalid("nats.url (NATS_URL)", "is required"));
        }
        if url
            .split(',')
            .map(str::trim)
            .any(|url| !(url.starts_with("nats://") || url.starts_with("tls://")))
        {
            return Err(ConfigError::invalid(
                "nats.url (NATS_URL)",
                "must be nats:// or tls:// URLs, separated by commas for a cluster",
            ));
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(ConfigError::invalid(
                "nats.replicas",
                "must be from 1 to 5 (JetStream's limit; 3 on a three-node cluster)",
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
    use crate::config::Secret;

    #[test]
    fn a_stream_name_that_is_no_subject_token_is_named() {
        let mut settings = valid();
        settings.nats.stream = "bad.name".into();
        let error = settings.validate().expect_err("refused").to_string();
        assert!(error.contains("nats.stream"), "{error}");
    }

    #[test]
    fn a_cluster_is_a_list_of_urls_and_replicas_are_bounded() {
        let mut settings = valid();
        settings.nats.url = Secret::new("nats://a:4222, nats://b:4222,nats://c:4222");
        settings.nats.replicas = 3;
        settings.validate().expect("a three-node cluster");
        settings.nats.url = Secret::new("nats://a:4222,b:4222");
        let error = settings.validate().expect_err("refused").to_string();
        assert!(error.contains("nats.url"), "{error}");
        settings.nats.url = Secret::new("nats://a:4222");
        for replicas in [0, 6] {
            settings.nats.replicas = replicas;
            let error = settings.validate().expect_err("refused").to_string();
            assert!(error.contains("nats.replicas"), "{error}");
        }
    }
}
