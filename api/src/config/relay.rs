//! `relay`: the worker that publishes the event store's global feed to JetStream.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// A background worker that reads the feed in batches (the relay).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// Run it in this process (when the process has the `workers` role).
    pub enabled: bool,
    /// Events per batch.
    pub batch_size: usize,
    /// Fallback polling interval (the relay is also woken on every local commit).
    pub poll_interval_ms: u64,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            batch_size: 500,
            poll_interval_ms: 250,
        }
    }
}

impl WorkerSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.batch_size == 0 {
            return Err(ConfigError::invalid("relay.batch_size", "must be positive"));
        }
        Ok(())
    }
}
