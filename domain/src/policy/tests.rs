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

/// The whole table: every role × every action, on someone else's resource.
#[test]
fn role_action_table() {
    use ApiKeyAction::*;
    use DocumentAction::*;
    use JobAction::*;
    use OperationAction::*;
    use UserAction::*;
    let allowed: Vec<(Role, Vec<Action>)> = vec![
        (
            Role::Admin,
            actions![
                RegisterUser,
                ChangeDisplayName,
                ChangeUserRoles,
                DeactivateUser,
                ReactivateUser,
                ReadUser,
                ListUsers,
                IssueApiKey,
                RevokeApiKey,
                ReadProjectionStatus,
                RetryParked,
                RebuildProjection,
                SubmitJob,
                CancelJob,
                ResubmitJob,
                ReadJob,
                ListJobs,
                ReadJobStats,
                ReadUsage,
                WatchJobs,
                UploadDocument,
                DownloadDocument,
            ],
        ),
        (Role::Moderator, actions![ReadUser, ListUsers, ReadJobStats]),
        (
            Role::Auditor,
            actions![
                ReadUser,
                ListUsers,
                ReadProjectionStatus,
                ReadJob,
                ListJobs,
                ReadJobStats,
                ReadUsage,
                WatchJobs,
            ],
        ),
        (Role::User, actions![SubmitJob, UploadDocument]),
        (
            Role::Worker,
            actions![WorkJobs, UploadDocument, DownloadDocument],
        ),
    ];
    let someone_else = Some(Uuid::from_u128(2));
    for (role, actions) in &allowed {
        for action in Action::all() {
            let expected = actions.contains(&action);
            let decision = authorize(&principal(*role), action, someone_else);
            assert_eq!(decision.is_ok(), expected, "{role:?} × {action:?}");
        }
    }
    assert_eq!(allowed.len(), Role::ALL.len(), "every role is in the table");
    // Every action the table names is registered (so `Action::all` misses none of them).
    let registered: BTreeSet<Action> = Action::all().collect();
    for (_, actions) in &allowed {
        assert!(actions.iter().all(|action| registered.contains(action)));
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

/// The registered table as a reviewer reads it: a changed rule or name shows in the diff.
#[test]
fn the_policy_table() {
    let table: Vec<String> = Action::all()
        .map(|action| {
            let rule = action.rule();
            let roles: Vec<&str> = rule.allowed_roles().iter().map(|r| r.as_str()).collect();
            let subject = if rule.allows_subject() {
                " + subject"
            } else {
                ""
            };
            format!("{}: {}{subject}", action.name(), roles.join(", "))
        })
        .collect();
    insta::assert_snapshot!("policy_table", table.join("\n"));
}
