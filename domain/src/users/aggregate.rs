use serde::{Deserialize, Serialize};

use super::{DisplayName, Email, UserCommand, UserError, UserEvent};
use crate::aggregate::Decider;
use crate::identity::Roles;

/// Whether a registered user may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserStatus {
    /// May act.
    Active,
    /// May not act until reactivated.
    Deactivated,
}

impl UserStatus {
    /// The status as stored in read models and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deactivated => "deactivated",
        }
    }
}

/// The user aggregate's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum User {
    /// No registration yet: the only command accepted is `Register`.
    #[default]
    Unregistered,
    /// A registered user.
    Registered {
        /// Normalised email address.
        email: Email,
        /// Current display name.
        display_name: DisplayName,
        /// What the user may do.
        roles: Roles,
        /// Whether the user may act.
        status: UserStatus,
    },
}

impl Decider for User {
    const TYPE: &'static str = "User";
    const SNAPSHOT_SCHEMA: u32 = 1;
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;

    fn decide(&self, command: UserCommand) -> Result<Vec<UserEvent>, UserError> {
        let event = match (self, command) {
            (
                Self::Unregistered,
                UserCommand::Register {
                    email,
                    display_name,
                    roles,
                    at,
                },
            ) => UserEvent::UserRegistered {
                email,
                display_name,
                roles,
                at,
            },
            (Self::Registered { .. }, UserCommand::Register { .. }) => {
                return Err(UserError::AlreadyRegistered)
            }
            (Self::Unregistered, _) => return Err(UserError::NotFound),
            (
                Self::Registered {
                    status: UserStatus::Deactivated,
                    ..
                },
                UserCommand::Reactivate { at },
            ) => UserEvent::UserReactivated { at },
            (
                Self::Registered {
                    status: UserStatus::Active,
                    ..
                },
                UserCommand::Reactivate { .. },
            ) => return Err(UserError::AlreadyActive),
            (
                Self::Registered {
                    status: UserStatus::Deactivated,
                    ..
                },
                _,
            ) => return Err(UserError::Deactivated),
            (
                Self::Registered {
                    display_name: current,
                    ..
                },
                UserCommand::ChangeDisplayName { display_name, at },
            ) => {
                if *current == display_name {
                    return Err(UserError::DisplayNameUnchanged);
                }
                UserEvent::DisplayNameChanged { display_name, at }
            }
            (Self::Registered { roles: current, .. }, UserCommand::ChangeRoles { roles, at }) => {
                if *current == roles {
                    return Err(UserError::RolesUnchanged);
                }
                UserEvent::RolesChanged { roles, at }
            }
            (Self::Registered { .. }, UserCommand::Deactivate { at }) => {
                UserEvent::UserDeactivated { at }
            }
        };
        Ok(vec![event])
    }

    fn evolve(&mut self, event: &UserEvent) {
        match (self, event) {
            (
                this @ Self::Unregistered,
                UserEvent::UserRegistered {
                    email,
                    display_name,
                    roles,
                    ..
                },
            ) => {
                *this = Self::Registered {
                    email: email.clone(),
                    display_name: display_name.clone(),
                    roles: roles.clone(),
                    status: UserStatus::Active,
                };
            }
            (Self::Registered { roles, .. }, UserEvent::RolesChanged { roles: new, .. }) => {
                *roles = new.clone();
            }
            (
                Self::Registered { display_name, .. },
                UserEvent::DisplayNameChanged {
                    display_name: new, ..
                },
            ) => {
                *display_name = new.clone();
            }
            (Self::Registered { status, .. }, UserEvent::UserDeactivated { .. }) => {
                *status = UserStatus::Deactivated;
            }
            (Self::Registered { status, .. }, UserEvent::UserReactivated { .. }) => {
                *status = UserStatus::Active;
            }
            // `decide` never produces any other pairing; history is applied as recorded.
            _ => {}
        }
    }
}
