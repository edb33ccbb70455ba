use chrono::{DateTime, Utc};

use super::{KeyName, SecretHash};
use crate::identity::Roles;

/// What an administrator can do with an API key.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiKeyCommand {
    /// Issue a new key under the aggregate's id.
    Issue {
        /// What the key is for.
        name: KeyName,
        /// What the key may do (at least one role).
        roles: Roles,
        /// When the key stops working, if ever.
        expires_at: Option<DateTime<Utc>>,
        /// Hash of the secret handed to the caller once.
        secret_hash: SecretHash,
        /// When.
        at: DateTime<Utc>,
    },
    /// Revoke the key for good.
    Revoke {
        /// When.
        at: DateTime<Utc>,
    },
}

impl ApiKeyCommand {
    /// The command's name as recorded in event metadata.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Issue { .. } => "IssueApiKey",
            Self::Revoke { .. } => "RevokeApiKey",
        }
    }
}
