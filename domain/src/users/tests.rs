//! Given/when/then for every user command in every state, and replay equals live state.

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use proptest::prelude::*;

use super::*;
use crate::aggregate::{replay, Decider, Guarded, Rejection, Versioned};
use crate::identity::{Role, Roles};

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

/// The state a history leaves.
fn after(history: &[UserEvent]) -> User {
    replay::<User>(history).state().clone()
}

fn registered_as(display_name: &str, roles: Roles, status: UserStatus) -> User {
    User::Registered {
        email: email(),
        display_name: name(display_name),
        roles,
        status,
    }
}

#[test]
fn each_event_changes_what_it_names_and_nothing_else() {
    let admin = Roles::from([Role::Admin]);
    let cases = [
        (vec![], User::Unregistered),
        (
            vec![registered()],
            registered_as("Ada", roles(), UserStatus::Active),
        ),
        (
            vec![
                registered(),
                UserEvent::RolesChanged {
                    roles: admin.clone(),
                    at: at(),
                },
            ],
            registered_as("Ada", admin, UserStatus::Active),
        ),
        (
            vec![
                registered(),
                UserEvent::DisplayNameChanged {
                    display_name: name("Countess"),
                    at: at(),
                },
            ],
            registered_as("Countess", roles(), UserStatus::Active),
        ),
        (
            vec![registered(), UserEvent::UserDeactivated { at: at() }],
            registered_as("Ada", roles(), UserStatus::Deactivated),
        ),
        (
            vec![
                registered(),
                UserEvent::UserDeactivated { at: at() },
                UserEvent::UserReactivated { at: at() },
            ],
            registered_as("Ada", roles(), UserStatus::Active),
        ),
    ];
    for (history, expected) in cases {
        assert_eq!(after(&history), expected, "{history:?}");
    }
}

#[test]
fn a_reactivated_user_can_be_changed_again() {
    Given::with(())
        .given(vec![
            registered(),
            UserEvent::UserDeactivated { at: at() },
            UserEvent::UserReactivated { at: at() },
        ])
        .when(when(UserCommand::Deactivate { at: at() }))
        .then_expect_events(vec![UserEvent::UserDeactivated { at: at() }]);
}

#[test]
fn a_renamed_user_is_compared_with_the_new_name() {
    let renamed = UserEvent::DisplayNameChanged {
        display_name: name("Countess"),
        at: at(),
    };
    Given::with(())
        .given(vec![registered(), renamed.clone()])
        .when(when(UserCommand::ChangeDisplayName {
            display_name: name("Countess"),
            at: at(),
        }))
        .then_expect_error(domain(UserError::DisplayNameUnchanged));
    Given::with(())
        .given(vec![registered(), renamed])
        .when(when(UserCommand::ChangeDisplayName {
            display_name: name("Ada"),
            at: at(),
        }))
        .then_expect_events(vec![UserEvent::DisplayNameChanged {
            display_name: name("Ada"),
            at: at(),
        }]);
}

#[test]
fn changed_roles_are_compared_with_the_new_roles() {
    let admin = Roles::from([Role::Admin]);
    let changed = UserEvent::RolesChanged {
        roles: admin.clone(),
        at: at(),
    };
    Given::with(())
        .given(vec![registered(), changed.clone()])
        .when(when(UserCommand::ChangeRoles {
            roles: admin,
            at: at(),
        }))
        .then_expect_error(domain(UserError::RolesUnchanged));
    Given::with(())
        .given(vec![registered(), changed])
        .when(when(UserCommand::ChangeRoles {
            roles: roles(),
            at: at(),
        }))
        .then_expect_events(vec![UserEvent::RolesChanged {
            roles: roles(),
            at: at(),
        }]);
}

#[test]
fn statuses_commands_and_events_read_as_recorded() {
    assert_eq!(UserStatus::Active.as_str(), "active");
    assert_eq!(UserStatus::Deactivated.as_str(), "deactivated");
    let commands = [
        UserCommand::Register {
            email: email(),
            display_name: name("Ada"),
            roles: roles(),
            at: at(),
        },
        UserCommand::ChangeDisplayName {
            display_name: name("X"),
            at: at(),
        },
        UserCommand::ChangeRoles {
            roles: roles(),
            at: at(),
        },
        UserCommand::Deactivate { at: at() },
        UserCommand::Reactivate { at: at() },
    ];
    let names: Vec<&str> = commands.iter().map(UserCommand::name).collect();
    assert_eq!(
        names,
        [
            "RegisterUser",
            "ChangeDisplayName",
            "ChangeUserRoles",
            "DeactivateUser",
            "ReactivateUser"
        ]
    );
    let later = at() + chrono::Duration::seconds(1);
    let events = [
        UserEvent::UserRegistered {
            email: email(),
            display_name: name("Ada"),
            roles: roles(),
            at: later,
        },
        UserEvent::DisplayNameChanged {
            display_name: name("X"),
            at: later,
        },
        UserEvent::RolesChanged {
            roles: roles(),
            at: later,
        },
        UserEvent::UserDeactivated { at: later },
        UserEvent::UserReactivated { at: later },
    ];
    assert!(events.iter().all(|event| event.at() == later));
}

#[test]
fn error_codes_and_kinds_are_stable() {
    use crate::error::{DomainError, ErrorKind};
    use crate::names::CodePoint;
    let cases = [
        (
            UserError::InvalidEmail { reason: "x" },
            "invalid_email",
            ErrorKind::Invalid,
        ),
        (
            UserError::DisplayNameLength {
                min: 1,
                max: 64,
                actual: 0,
            },
            "display_name_length",
            ErrorKind::Invalid,
        ),
        (
            UserError::DisplayNameCharacters,
            "display_name_characters",
            ErrorKind::Invalid,
        ),
        (
            UserError::DisplayNameInvisibleCharacter {
                character: CodePoint::of('\u{200B}'),
            },
            "display_name_invisible_character",
            ErrorKind::Invalid,
        ),
        (
            UserError::AlreadyRegistered,
            "user_already_registered",
            ErrorKind::Conflict,
        ),
        (UserError::EmailTaken, "email_taken", ErrorKind::Conflict),
        (UserError::NotFound, "user_not_found", ErrorKind::NotFound),
        (
            UserError::Deactivated,
            "user_deactivated",
            ErrorKind::Rejected,
        ),
        (
            UserError::AlreadyActive,
            "user_already_active",
            ErrorKind::Rejected,
        ),
        (
            UserError::RolesUnchanged,
            "roles_unchanged",
            ErrorKind::Rejected,
        ),
        (
            UserError::DisplayNameUnchanged,
            "display_name_unchanged",
            ErrorKind::Rejected,
        ),
    ];
    for (error, code, kind) in cases {
        assert_eq!((error.code(), error.kind()), (code, kind), "{error:?}");
    }
    assert_eq!(
        UserError::DisplayNameInvisibleCharacter {
            character: CodePoint::of('\u{202E}')
        }
        .to_string(),
        "display name must not contain invisible or bidirectional control characters (U+202E)"
    );
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
    /// Whatever sequence of commands ran, replaying the recorded events yields the live state,
    /// and so does a snapshot after any of them resumed with the rest.
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
        crate::aggregate::assert_snapshots_resume::<User>(&history);
    }
}
