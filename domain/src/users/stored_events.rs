//! The stored form of every user event (see `crate::stored_check`).

use super::{DisplayName, Email, UserEvent};
use crate::identity::{Role, Roles};
use crate::stored_check::{at, stored_events_test};

fn samples() -> Vec<UserEvent> {
    vec![
        UserEvent::UserRegistered {
            email: Email::parse("ada@example.org").expect("valid"),
            display_name: DisplayName::parse("Ada").expect("valid"),
            roles: Roles::from([Role::Admin, Role::Auditor]),
            at: at(0),
        },
        UserEvent::DisplayNameChanged {
            display_name: DisplayName::parse("Ada L.").expect("valid"),
            at: at(1),
        },
        UserEvent::RolesChanged {
            roles: Roles::from([Role::User]),
            at: at(2),
        },
        UserEvent::UserDeactivated { at: at(3) },
        UserEvent::UserReactivated { at: at(4) },
    ]
}

stored_events_test! {
    fn user_events_are_stored_under_their_event_types() for UserEvent {
        snapshot: "user_events",
        former_tags: [("RolesChanged", "UserRolesChanged")],
        samples: samples(),
    }
}
