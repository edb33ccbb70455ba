use chrono::{DateTime, Utc};

use super::{DisplayName, Email};
use crate::identity::Roles;

/// What a client can ask of a user. Times are supplied by the caller: the domain reads no clock.
#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    /// Register a new user under the aggregate's id.
    Register {
        /// The (unique per tenant) email address.
        email: Email,
        /// How the user is shown.
        display_name: DisplayName,
        /// What the user may do.
        roles: Roles,
        /// When the registration was accepted.
        at: DateTime<Utc>,
    },
    /// Rename a user.
    ChangeDisplayName {
        /// The new name.
        display_name: DisplayName,
        /// When the change was accepted.
        at: DateTime<Utc>,
    },
    /// Replace a user's roles.
    ChangeRoles {
        /// The new roles.
        roles: Roles,
        /// When the change was accepted.
        at: DateTime<Utc>,
    },
    /// Stop a user from acting; history is kept.
    Deactivate {
        /// When.
        at: DateTime<Utc>,
    },
    /// Allow a deactivated user to act again.
    Reactivate {
        /// When.
        at: DateTime<Utc>,
    },
}

impl UserCommand {
    /// The command's name as recorded in event metadata.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Register { .. } => "RegisterUser",
            Self::ChangeDisplayName { .. } => "ChangeDisplayName",
            Self::ChangeRoles { .. } => "ChangeUserRoles",
            Self::Deactivate { .. } => "DeactivateUser",
            Self::Reactivate { .. } => "ReactivateUser",
        }
    }
}
