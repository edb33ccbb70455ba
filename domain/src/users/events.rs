use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::{DisplayName, Email};
use crate::identity::Roles;

/// What happened to a user. Stored forever: add variants, never change existing ones without an
/// upcaster and a new `event_version`.
///
/// A variant's stored JSON tag is its `event_type()`: where the Rust name differs, a serde
/// `rename` says so, and an `alias` keeps reading the tag older history was written with (before
/// the rename, variants were stored under their Rust names). `stored_events.rs` in this folder
/// holds the stored form of every variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserEvent {
    /// A user was registered.
    UserRegistered {
        /// Normalised email address.
        email: Email,
        /// Initial display name.
        display_name: DisplayName,
        /// Initial roles.
        #[serde(default)]
        roles: Roles,
        /// When the registration was accepted.
        at: DateTime<Utc>,
    },
    /// A user's display name changed.
    DisplayNameChanged {
        /// The new name.
        display_name: DisplayName,
        /// When.
        at: DateTime<Utc>,
    },
    /// A user's roles were replaced.
    #[serde(rename = "UserRolesChanged", alias = "RolesChanged")]
    RolesChanged {
        /// The new roles.
        roles: Roles,
        /// When.
        at: DateTime<Utc>,
    },
    /// A user was deactivated.
    UserDeactivated {
        /// When.
        at: DateTime<Utc>,
    },
    /// A deactivated user was reactivated.
    UserReactivated {
        /// When.
        at: DateTime<Utc>,
    },
}

impl UserEvent {
    /// When the change was accepted.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::UserRegistered { at, .. }
            | Self::DisplayNameChanged { at, .. }
            | Self::RolesChanged { at, .. }
            | Self::UserDeactivated { at }
            | Self::UserReactivated { at } => *at,
        }
    }
}

impl DomainEvent for UserEvent {
    /// The stored event type. These strings are part of the stored data: never change one.
    fn event_type(&self) -> String {
        match self {
            Self::UserRegistered { .. } => "UserRegistered",
            Self::DisplayNameChanged { .. } => "DisplayNameChanged",
            Self::RolesChanged { .. } => "UserRolesChanged",
            Self::UserDeactivated { .. } => "UserDeactivated",
            Self::UserReactivated { .. } => "UserReactivated",
        }
        .to_owned()
    }

    /// Changes only together with an upcaster for the previous version.
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
