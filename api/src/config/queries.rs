//! `queries`: how the query side answers.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Query behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuerySettings {
    /// Longest a query waits for its consistency token before answering "behind".
    pub consistency_wait_ms: u64,
    /// Largest page size.
    pub max_page_size: u32,
}

impl Default for QuerySettings {
    fn default() -> Self {
        Self {
            consistency_wait_ms: 5_000,
            max_page_size: 100,
        }
    }
}

impl QuerySettings {
    /// The consistency wait as a duration.
    pub fn consistency_wait(&self) -> Duration {
        Duration::from_millis(self.consistency_wait_ms)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_page_size == 0 {
            return Err(ConfigError::invalid(
                "queries.max_page_size",
                "must be positive",
            ));
        }
        Ok(())
    }
}
