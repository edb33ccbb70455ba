//! `projections`: the builders that feed read models from JetStream.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The projection builders.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectionSettings {
    /// Run projection builders in this process (when the process has the `workers` role).
    pub enabled: bool,
    /// Events applied per transaction.
    pub batch_size: usize,
    /// Readiness fails when a projection is further behind than this many events.
    pub max_lag_events: i64,
    /// Partitions per projection; each has one active worker across all processes.
    pub partitions: u32,
}

impl Default for ProjectionSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            batch_size: 256,
            max_lag_events: 10_000,
            partitions: 4,
        }
    }
}

impl ProjectionSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.batch_size == 0 {
            return Err(ConfigError::invalid(
                "projections.batch_size",
                "must be positive",
            ));
        }
        if !(1..=256).contains(&self.partitions) {
            return Err(ConfigError::invalid(
                "projections.partitions",
                "must be 1 to 256",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_size_and_partitions_are_bounded() {
        let mut projections = ProjectionSettings {
            batch_size: 0,
            ..ProjectionSettings::default()
        };
        let error = projections.validate().expect_err("refused").to_string();
        assert!(error.contains("projections.batch_size"), "{error}");

        projections.batch_size = 1;
        projections.partitions = 257;
        let error = projections.validate().expect_err("refused").to_string();
        assert!(error.contains("projections.partitions"), "{error}");
    }
}
