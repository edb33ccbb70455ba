//! `community`: the rules of what members write.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Community behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommunitySettings {
    /// How long after writing a post its author may edit it, in minutes.
    pub edit_window_minutes: u32,
    /// Posts one member may write per minute (while `rate_limit.enabled`).
    pub posts_per_minute: u32,
    /// Comments one member may write per minute (while `rate_limit.enabled`).
    pub comments_per_minute: u32,
}

impl Default for CommunitySettings {
    fn default() -> Self {
        Self {
            edit_window_minutes: 60,
            posts_per_minute: 5,
            comments_per_minute: 20,
        }
    }
}

impl CommunitySettings {
    /// The edit window as a duration.
    pub fn edit_window(&self) -> TimeDelta {
        TimeDelta::minutes(i64::from(self.edit_window_minutes))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        // A year at most: a window is a courtesy for fixing typos, not a licence to rewrite.
        if !(1..=525_600).contains(&self.edit_window_minutes) {
            return Err(ConfigError::invalid(
                "community.edit_window_minutes",
                "must be 1 to 525600 (a year)",
            ));
        }
        if self.posts_per_minute == 0 || self.comments_per_minute == 0 {
            return Err(ConfigError::invalid(
                "community.*_per_minute",
                "must be positive (set rate_limit.enabled = false to switch limits off)",
            ));
        }
        Ok(())
    }
}
