//! `community`: the rules of what members write.

use chrono::TimeDelta;
use domain::community::TextLimits;
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
    /// The longest title (posts, announcements) or category name, in characters: 1 to 1,000.
    pub title_max_chars: usize,
    /// The longest body (posts, comments, announcements, category descriptions), in characters:
    /// 1 to 60,000.
    pub body_max_chars: usize,
}

impl Default for CommunitySettings {
    fn default() -> Self {
        Self {
            edit_window_minutes: 60,
            posts_per_minute: 5,
            comments_per_minute: 20,
            title_max_chars: TextLimits::DEFAULT.title_max_chars,
            body_max_chars: TextLimits::DEFAULT.body_max_chars,
        }
    }
}

impl CommunitySettings {
    /// The edit window as a duration.
    pub fn edit_window(&self) -> TimeDelta {
        TimeDelta::minutes(i64::from(self.edit_window_minutes))
    }

    /// The limits titles and bodies are held to.
    pub fn text_limits(&self) -> TextLimits {
        TextLimits {
            title_max_chars: self.title_max_chars,
            body_max_chars: self.body_max_chars,
        }
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
        if !(1..=TextLimits::TITLE_CEILING).contains(&self.title_max_chars) {
            return Err(ConfigError::invalid(
                "community.title_max_chars",
                "must be 1 to 1000",
            ));
        }
        if !(1..=TextLimits::BODY_CEILING).contains(&self.body_max_chars) {
            return Err(ConfigError::invalid(
                "community.body_max_chars",
                "must be 1 to 60000",
            ));
        }
        debug_assert!(self.text_limits().is_valid());
        Ok(())
    }
}
