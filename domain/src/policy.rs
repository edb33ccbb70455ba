//! Authorization: whether a principal may perform an action. Pure functions, one table.
//!
//! Every command and query route names its [`Action`]; the API refuses to run a handler until
//! [`authorize`] allowed it. Tenancy is not decided here: every stream id and read-model row
//! is scoped by the principal's tenant, so another tenant's resources are simply not found.

use uuid::Uuid;

use crate::identity::{Principal, Role};

/// Everything a principal can ask the system to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Create a user in the tenant.
    RegisterUser,
    /// Rename a user.
    ChangeDisplayName,
    /// Set a user's roles.
    ChangeUserRoles,
    /// Deactivate a user.
    DeactivateUser,
    /// Reactivate a user.
    ReactivateUser,
    /// Read one user.
    ReadUser,
    /// List the tenant's users.
    ListUsers,
    /// Issue an API key.
    IssueApiKey,
    /// Revoke an API key.
    RevokeApiKey,
    /// Read projection lag and parked streams.
    ReadProjectionStatus,
    /// Retry a parked stream.
    RetryParked,
    /// Rebuild a projection from the event store.
    RebuildProjection,
    /// Submit a translation job.
    SubmitJob,
    /// Cancel a job (its owner, or an admin).
    CancelJob,
    /// Give a dead-lettered job a new chain of attempts.
    ResubmitJob,
    /// Claim jobs and report on them (the worker protocol).
    WorkJobs,
    /// Read one job (its owner, or staff).
    ReadJob,
    /// List jobs (one's own, or everyone's for staff).
    ListJobs,
    /// Read the dashboard statistics.
    ReadJobStats,
    /// Read a user's usage (oneself, or staff).
    ReadUsage,
    /// Subscribe to live job updates (one's own, or everyone's for staff).
    WatchJobs,
    /// Upload a document.
    UploadDocument,
    /// Download a document (its uploader, an admin, or a worker that needs it).
    DownloadDocument,
}

impl Action {
    /// Every action, for exhaustive tests.
    pub const ALL: [Action; 23] = [
        Self::RegisterUser,
        Self::ChangeDisplayName,
        Self::ChangeUserRoles,
        Self::DeactivateUser,
        Self::ReactivateUser,
        Self::ReadUser,
        Self::ListUsers,
        Self::IssueApiKey,
        Self::RevokeApiKey,
        Self::ReadProjectionStatus,
        Self::RetryParked,
        Self::RebuildProjection,
        Self::SubmitJob,
        Self::CancelJob,
        Self::ResubmitJob,
        Self::WorkJobs,
        Self::ReadJob,
        Self::ListJobs,
        Self::ReadJobStats,
        Self::ReadUsage,
        Self::WatchJobs,
        Self::UploadDocument,
        Self::DownloadDocument,
    ];
}

/// Why an action was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The principal lacks the role (and does not own the resource).
    #[error("your roles do not allow this action")]
    Forbidden,
}

/// Whether `principal` may perform `action`; `subject` is the user the action concerns, if
/// any, so that users may act on themselves where the table allows it.
///
/// # Errors
/// [`Denied::Forbidden`].
pub fn authorize(
    principal: &Principal,
    action: Action,
    subject: Option<Uuid>,
) -> Result<(), Denied> {
    // The user itself, or for resources a principal owns (jobs, documents) its account.
    let is_self = subject == Some(principal.account);
    let any = |roles: &[Role]| roles.iter().any(|role| principal.has(*role));
    let allowed = match action {
        Action::RegisterUser
        | Action::ChangeUserRoles
        | Action::DeactivateUser
        | Action::ReactivateUser
        | Action::IssueApiKey
        | Action::RevokeApiKey
        | Action::RetryParked
        | Action::RebuildProjection
        | Action::ResubmitJob => any(&[Role::Admin]),
        Action::SubmitJob => any(&[Role::Admin, Role::User]),
        Action::CancelJob => is_self || any(&[Role::Admin]),
        Action::WorkJobs => any(&[Role::Worker]),
        Action::ReadJob | Action::ListJobs | Action::ReadUsage | Action::WatchJobs => {
            is_self || any(&[Role::Admin, Role::Auditor])
        }
        Action::ReadJobStats => any(&[Role::Admin, Role::Moderator, Role::Auditor]),
        Action::UploadDocument => any(&[Role::Admin, Role::User, Role::Worker]),
        // Workers read the documents of the jobs they claim, and upload their results.
        Action::DownloadDocument => is_self || any(&[Role::Admin, Role::Worker]),
        Action::ReadProjectionStatus => any(&[Role::Admin, Role::Auditor]),
        Action::ChangeDisplayName => is_self || any(&[Role::Admin]),
        Action::ReadUser => is_self || any(&[Role::Admin, Role::Moderator, Role::Auditor]),
        Action::ListUsers => any(&[Role::Admin, Role::Moderator, Role::Auditor]),
    };
    if allowed {
        Ok(())
    } else {
        Err(Denied::Forbidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Roles, TenantId};

    fn principal(role: Role) -> Principal {
        Principal::user(
            TenantId::parse("t").unwrap(),
            Uuid::from_u128(1),
            Roles::from([role]),
        )
    }

    /// The whole table: every role × every action, on someone else's resource.
    #[test]
    fn role_action_table() {
        use Action::*;
        let allowed: &[(Role, &[Action])] = &[
            (
                Role::Admin,
                &[
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
            (Role::Moderator, &[ReadUser, ListUsers, ReadJobStats]),
            (
                Role::Auditor,
                &[
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
            (Role::User, &[SubmitJob, UploadDocument]),
            (Role::Worker, &[WorkJobs, UploadDocument, DownloadDocument]),
        ];
        let someone_else = Some(Uuid::from_u128(2));
        for (role, actions) in allowed {
            for action in Action::ALL {
                let expected = actions.contains(&action);
                let decision = authorize(&principal(*role), action, someone_else);
                assert_eq!(decision.is_ok(), expected, "{role:?} × {action:?}");
            }
        }
        assert_eq!(allowed.len(), Role::ALL.len(), "every role is in the table");
    }

    #[test]
    fn users_may_read_and_rename_themselves_only() {
        let me = principal(Role::User);
        let myself = me.user;
        assert_eq!(authorize(&me, Action::ReadUser, myself), Ok(()));
        assert_eq!(authorize(&me, Action::ChangeDisplayName, myself), Ok(()));
        for action in [
            Action::CancelJob,
            Action::ReadJob,
            Action::ListJobs,
            Action::ReadUsage,
            Action::WatchJobs,
            Action::DownloadDocument,
        ] {
            assert_eq!(authorize(&me, action, myself), Ok(()), "{action:?}");
        }
        for action in [
            Action::DeactivateUser,
            Action::ChangeUserRoles,
            Action::ListUsers,
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
        for action in Action::ALL {
            assert_eq!(authorize(&nobody, action, None), Err(Denied::Forbidden));
        }
    }
}
