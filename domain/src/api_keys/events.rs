use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::{KeyName, SecretHash};
use crate::identity::Roles;

/// What happened to an API key. Stored forever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ApiKeyEvent {
    /// A key was issued.
    ApiKeyIssued {
        /// What the key is for.
        name: KeyName,
        /// What the key may do.
        roles: Roles,
        /// When it stops working, if ever.
        expires_at: Option<DateTime<Utc>>,
        /// Hash of its secret.
        secret_hash: SecretHash,
        /// When.
        at: DateTime<Utc>,
    },
    /// A key was revoked.
    ApiKeyRevoked {
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ApiKeyEvent {
    /// The stored event type. These strings are part of the stored data: never change one.
    fn event_type(&self) -> String {
        match self {
            Self::ApiKeyIssued { .. } => "ApiKeyIssued",
            Self::ApiKeyRevoked { .. } => "ApiKeyRevoked",
        }
        .to_owned()
    }

    /// Changes only together with an upcaster for the previous version.
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
