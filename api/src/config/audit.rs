//! `audit`: the verifiable audit log (the sealer and its signed checkpoints).

use std::time::Duration;

use commands::audit::sealer::{SealerSettings, SigningKey};
use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};

/// The verifiable audit log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// Run the sealer in this process (with the `workers` role; one is active at a time).
    pub sealer_enabled: bool,
    /// The Ed25519 key checkpoints are signed with, as a C2SP signed-note private key
    /// (`PRIVATE+KEY+{name}+{id}+{base64}`; `backend generate-audit-key` makes one). Without
    /// it the log is sealed but no checkpoint is published.
    pub signing_key: Secret,
    /// Checkpoint origins are `{origin}/{tenant}`.
    pub origin: String,
    /// A checkpoint once a tenant's log grew by this many events ...
    pub checkpoint_every_events: i64,
    /// ... or once this many seconds passed since its last one, if it grew at all.
    pub checkpoint_interval_secs: u64,
    /// How often the sealer looks at the feed when idle.
    pub poll_interval_ms: u64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            sealer_enabled: true,
            signing_key: Secret::default(),
            origin: "cqrs-backend.local".to_owned(),
            checkpoint_every_events: 1_000,
            checkpoint_interval_secs: 60,
            poll_interval_ms: 200,
        }
    }
}

impl AuditSettings {
    /// The configured signing key, if any.
    ///
    /// # Errors
    /// When one is set but unreadable (refused at start-up by [`AuditSettings::validate`]).
    pub fn key(&self) -> Result<Option<SigningKey>, ConfigError> {
        let key = self.signing_key.expose();
        if key.is_empty() {
            return Ok(None);
        }
        SigningKey::parse(key).map(Some).map_err(|_| {
            ConfigError::invalid(
                "audit.signing_key (APP_AUDIT__SIGNING_KEY)",
                "must be a signed-note Ed25519 private key, PRIVATE+KEY+{name}+{id}+{base64} \
                 (`backend generate-audit-key` makes one)",
            )
        })
    }

    /// The sealer's settings.
    pub fn sealer(&self) -> SealerSettings {
        SealerSettings {
            origin: self.origin.clone(),
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            batch: 500,
            checkpoint_every: self.checkpoint_every_events,
            checkpoint_interval: Duration::from_secs(self.checkpoint_interval_secs),
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let origin_ok = !self.origin.is_empty()
            && self
                .origin
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '+');
        if !origin_ok {
            return Err(ConfigError::invalid(
                "audit.origin",
                "must be printable ASCII without spaces or '+' (a checkpoint origin)",
            ));
        }
        if self.checkpoint_every_events < 1 || self.checkpoint_interval_secs == 0 {
            return Err(ConfigError::invalid(
                "audit.checkpoint_every_events / audit.checkpoint_interval_secs",
                "must be positive",
            ));
        }
        if self.poll_interval_ms == 0 {
            return Err(ConfigError::invalid(
                "audit.poll_interval_ms",
                "must be positive",
            ));
        }
        self.key().map(|_| ())
    }
}
