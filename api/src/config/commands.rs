//! `commands`: how the write side runs.

use serde::{Deserialize, Serialize};

/// The write side.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommandSettings {
    /// A snapshot of an aggregate is saved once loading it would replay this many events;
    /// 0 turns snapshots off (every load replays the whole stream).
    pub snapshot_every_events: u64,
}

impl Default for CommandSettings {
    fn default() -> Self {
        Self {
            snapshot_every_events: commands::bus::DEFAULT_SNAPSHOT_EVERY,
        }
    }
}
