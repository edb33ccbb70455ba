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

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};
    use cqrs_es::test::TestFramework;
    use proptest::prelude::*;

    use super::*;
    use crate::aggregate::{replay, Guarded, Rejection, Versioned};
    use crate::identity::Role;

    type Given = TestFramework<Versioned<User>>;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
    }
    fn email() -> Email {
        Email::parse("ada@example.org").unwrap()
    }
    fn name(raw: &str) -> DisplayName {
        DisplayName::parse(raw).unwrap()
    }
    fn registered() -> UserEvent {
        UserEvent::UserRegistered {
            email: email(),
            display_name: name("Ada"),
            roles: roles(),
            at: at(),
        }
    }
    fn roles() -> Roles {
        Roles::from([Role::User])
    }
    fn when(command: UserCommand) -> Guarded<UserCommand> {
        Guarded::new(command)
    }
    fn domain(error: UserError) -> Rejection<UserError> {
        Rejection::Domain(error)
    }

    #[test]
    fn register_a_new_user() {
        Given::with(())
            .given_no_previous_events()
            .when(when(UserCommand::Register {
                email: email(),
                display_name: name("Ada"),
                roles: roles(),
                at: at(),
            }))
            .then_expect_events(vec![registered()]);
    }

    #[test]
    fn register_twice_on_the_same_id_is_refused() {
        Given::with(())
            .given(vec![registered()])
            .when(when(UserCommand::Register {
                email: email(),
                display_name: name("Ada"),
                roles: roles(),
                at: at(),
            }))
            .then_expect_error(domain(UserError::AlreadyRegistered));
    }

    #[test]
    fn change_display_name() {
        Given::with(())
            .given(vec![registered()])
            .when(when(UserCommand::ChangeDisplayName {
                display_name: name("Countess"),
                at: at(),
            }))
            .then_expect_events(vec![UserEvent::DisplayNameChanged {
                display_name: name("Countess"),
                at: at(),
            }]);
    }

    #[test]
    fn change_to_the_same_display_name_is_refused() {
        Given::with(())
            .given(vec![registered()])
            .when(when(UserCommand::ChangeDisplayName {
                display_name: name("Ada"),
                at: at(),
            }))
            .then_expect_error(domain(UserError::DisplayNameUnchanged));
    }

    #[test]
    fn commands_on_an_unknown_user_are_refused() {
        for command in [
            UserCommand::ChangeDisplayName {
                display_name: name("X"),
                at: at(),
            },
            UserCommand::Deactivate { at: at() },
            UserCommand::Reactivate { at: at() },
        ] {
            Given::with(())
                .given_no_previous_events()
                .when(when(command))
                .then_expect_error(domain(UserError::NotFound));
        }
    }

    #[test]
    fn change_roles() {
        let admin = Roles::from([Role::Admin, Role::User]);
        Given::with(())
            .given(vec![registered()])
            .when(when(UserCommand::ChangeRoles {
                roles: admin.clone(),
                at: at(),
            }))
            .then_expect_events(vec![UserEvent::RolesChanged {
                roles: admin,
                at: at(),
            }]);
    }

    #[test]
    fn setting_the_same_roles_is_refused() {
        Given::with(())
            .given(vec![registered()])
            .when(when(UserCommand::ChangeRoles {
                roles: roles(),
                at: at(),
            }))
            .then_expect_error(domain(UserError::RolesUnchanged));
    }

    #[test]
    fn deactivate_an_active_user() {
        Given::with(())
            .given(vec![registered()])
            .when(when(UserCommand::Deactivate { at: at() }))
            .then_expect_events(vec![UserEvent::UserDeactivated { at: at() }]);
    }

    #[test]
    fn a_deactivated_user_cannot_be_changed_or_deactivated_again() {
        for command in [
            UserCommand::ChangeDisplayName {
                display_name: name("X"),
                at: at(),
            },
            UserCommand::Deactivate { at: at() },
        ] {
            Given::with(())
                .given(vec![registered(), UserEvent::UserDeactivated { at: at() }])
                .when(when(command))
                .then_expect_error(domain(UserError::Deactivated));
        }
    }

    #[test]
    fn reactivate_a_deactivated_user() {
        Given::with(())
            .given(vec![registered(), UserEvent::UserDeactivated { at: at() }])
            .when(when(UserCommand::Reactivate { at: at() }))
            .then_expect_events(vec![UserEvent::UserReactivated { at: at() }]);
    }

    #[test]
    fn reactivate_an_active_user_is_refused() {
        Given::with(())
            .given(vec![registered()])
            .when(when(UserCommand::Reactivate { at: at() }))
            .then_expect_error(domain(UserError::AlreadyActive));
    }

    #[test]
    fn a_stale_expected_version_is_a_conflict() {
        Given::with(())
            .given(vec![registered()])
            .when(Guarded::expecting(
                Some(0),
                UserCommand::Deactivate { at: at() },
            ))
            .then_expect_error(Rejection::VersionMismatch {
                expected: 0,
                actual: 1,
            });
    }

    #[test]
    fn the_current_expected_version_is_accepted() {
        Given::with(())
            .given(vec![registered()])
            .when(Guarded::expecting(
                Some(1),
                UserCommand::Deactivate { at: at() },
            ))
            .then_expect_events(vec![UserEvent::UserDeactivated { at: at() }]);
    }

    fn any_command() -> impl Strategy<Value = UserCommand> {
        let names = prop::sample::select(vec!["Ada", "Grace", "Edsger"]);
        prop_oneof![
            Just(UserCommand::Register {
                email: email(),
                display_name: name("Ada"),
                roles: roles(),
                at: at()
            }),
            names.prop_map(|n| UserCommand::ChangeDisplayName {
                display_name: name(n),
                at: at()
            }),
            Just(UserCommand::ChangeRoles {
                roles: Roles::from([Role::Admin]),
                at: at()
            }),
            Just(UserCommand::Deactivate { at: at() }),
            Just(UserCommand::Reactivate { at: at() }),
        ]
    }

    proptest! {
        /// Whatever sequence of commands ran, replaying the recorded events yields the live state.
        #[test]
        fn replay_equals_live_state(commands in prop::collection::vec(any_command(), 0..30)) {
            let mut live = User::default();
            let mut history = Vec::new();
            for command in commands {
                if let Ok(events) = live.decide(command) {
                    for event in events {
                        live.evolve(&event);
                        history.push(event);
                    }
                }
            }
            let replayed = replay::<User>(&history);
            prop_assert_eq!(replayed.state(), &live);
            prop_assert_eq!(replayed.version(), history.len() as u64);
        }
    }
}
