//! `jobs`: translation jobs' leases, retries and the process manager that times them.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Translation jobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobSettings {
    /// How long a claim (and each heartbeat) holds a job.
    pub lease_secs: u64,
    /// Attempts per chain before a job is dead-lettered (1 to 100).
    pub max_attempts: u32,
    /// Wait before the first retry; doubled per attempt, with jitter.
    pub retry_base_delay_ms: u64,
    /// Longest wait between attempts.
    pub retry_max_delay_ms: u64,
    /// Run the process manager (lease expiry and retry timers) in this process (when the
    /// process has the `workers` role).
    pub scheduler_enabled: bool,
    /// How often the process manager looks for due timers.
    pub scheduler_tick_ms: u64,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            lease_secs: 60,
            max_attempts: 5,
            retry_base_delay_ms: 5_000,
            retry_max_delay_ms: 300_000,
            scheduler_enabled: true,
            scheduler_tick_ms: 500,
        }
    }
}

impl JobSettings {
    /// The retry policy new jobs are submitted with.
    ///
    /// # Errors
    /// When the configured values are out of bounds (rejected by validation at load).
    pub fn retry_policy(&self) -> Result<domain::jobs::RetryPolicy, domain::jobs::JobError> {
        domain::jobs::RetryPolicy::new(
            self.max_attempts,
            self.retry_base_delay_ms,
            self.retry_max_delay_ms,
        )
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.lease_secs == 0 || self.scheduler_tick_ms == 0 {
            return Err(ConfigError::invalid(
                "jobs.lease_secs / jobs.scheduler_tick_ms",
                "must be positive",
            ));
        }
        if self.retry_policy().is_err() {
            return Err(ConfigError::invalid(
                "jobs.max_attempts / jobs.retry_*_delay_ms",
                "need 1 to 100 attempts and retry_base_delay_ms <= retry_max_delay_ms",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inverted_backoff_is_refused() {
        let jobs = JobSettings {
            retry_base_delay_ms: 10_000,
            retry_max_delay_ms: 1_000,
            ..JobSettings::default()
        };
        let error = jobs.validate().expect_err("refused").to_string();
        assert!(error.contains("jobs.max_attempts"), "{error}");
    }
}
