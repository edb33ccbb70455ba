use std::collections::BTreeSet;

use super::*;
use crate::identity::{Roles, TenantId};

fn principal(role: Role) -> Principal {
    Principal::user(
        TenantId::parse("t").unwrap(),
        Uuid::from_u128(1),
        Roles::from([role]),
    )
}

/// Actions of any context, as `Action`s.
macro_rules! actions {
    ($($action:expr),* $(,)?) => {
        vec![$(Action::from($action)),*]
    };
}

/// `authorize` applies each action's registered rule, for every role, on someone else's resource
/// (where being the subject does not help). Which roles each rule names is the snapshot below:
/// deriving the expectation from the rules keeps this test free of a hand-kept table.
#[test]
fn authorize_follows_the_registered_rules() {
    let someone_else = Some(Uuid::from_u128(2));
    for role in Role::ALL {
        for action in Action::all() {
            let expected = action.rule().allowed_roles().contains(&role);
            let decision = authorize(&principal(role), action, someone_else);
            assert_eq!(decision.is_ok(), expected, "{role:?} × {action:?}");
        }
    }
}

#[test]
fn users_may_read_and_rename_themselves_only() {
    let me = principal(Role::User);
    let myself = me.user;
    assert_eq!(authorize(&me, UserAction::ReadUser, myself), Ok(()));
    assert_eq!(
        authorize(&me, UserAction::ChangeDisplayName, myself),
        Ok(())
    );
    for action in actions![
        JobAction::CancelJob,
        JobAction::ReadJob,
        JobAction::ListJobs,
        JobAction::ReadUsage,
        JobAction::WatchJobs,
        DocumentAction::DownloadDocument,
    ] {
        assert_eq!(authorize(&me, action, myself), Ok(()), "{action:?}");
    }
    for action in actions![
        UserAction::DeactivateUser,
        UserAction::ChangeUserRoles,
        UserAction::ListUsers,
    ] {
        assert_eq!(
            authorize(&me, action, myself),
            Err(Denied::Forbidden),
            "{action:?}"
        );
    }
}

#[test]
fn no_roles_no_access() {
    let nobody = Principal::api_key(TenantId::parse("t").unwrap(), Uuid::nil(), Roles::new());
    for action in Action::all() {
        assert_eq!(authorize(&nobody, action, None), Err(Denied::Forbidden));
    }
}

#[test]
fn every_action_has_one_stable_name() {
    let mut names = BTreeSet::new();
    for action in Action::all() {
        let name = action.name();
        assert!(names.insert(name), "{name} is used twice");
        assert_eq!(Action::by_name(name), Some(action), "{name}");
        assert_eq!(action.to_string(), name);
        let (context, local) = name.split_once('.').unwrap();
        for part in [context, local] {
            assert!(
                !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name} is not `context.action` in snake_case"
            );
        }
    }
    assert_eq!(Action::by_name("users.no_such_action"), None);
    assert_eq!(
        Action::from(UserAction::RegisterUser).name(),
        "users.register_user"
    );
    assert_eq!(UserAction::CONTEXT, "users");
}

/// The registered table as a reviewer reads it: every action with its rule, so a changed rule or
/// name, or a new context's actions, shows in the diff. It is the only table: the rules are
/// written once, in each context's `policy.rs`, and no test keeps a second copy by hand.
#[test]
fn the_policy_table() {
    let table: Vec<String> = Action::all()
        .map(|action| {
            let rule = action.rule();
            let roles: Vec<&str> = rule.allowed_roles().iter().map(|r| r.as_str()).collect();
            let who = match (roles.is_empty(), rule.allows_subject()) {
                (true, true) => "the subject only".to_owned(),
                (true, false) => "nobody".to_owned(),
                (false, true) => format!("{} + subject", roles.join(", ")),
                (false, false) => roles.join(", "),
            };
            format!("{}: {who}", action.name())
        })
        .collect();
    insta::assert_snapshot!("policy_table", table.join("\n"));
}
