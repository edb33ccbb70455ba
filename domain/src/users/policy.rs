//! What may be done with users, and by whom.

use crate::identity::Role;
use crate::policy::{context_actions, Rule};

context_actions! {
    /// The users context's actions.
    pub enum UserAction in "users" {
        /// Create a user in the tenant.
        RegisterUser = "register_user" => Rule::roles(&[Role::Admin]),
        /// Rename a user (the user itself, or an admin).
        ChangeDisplayName = "change_display_name" => Rule::roles(&[Role::Admin]).or_subject(),
        /// Set a user's roles.
        ChangeUserRoles = "change_user_roles" => Rule::roles(&[Role::Admin]),
        /// Deactivate a user.
        DeactivateUser = "deactivate_user" => Rule::roles(&[Role::Admin]),
        /// Reactivate a user.
        ReactivateUser = "reactivate_user" => Rule::roles(&[Role::Admin]),
        /// Read one user (the user itself, or staff).
        ReadUser = "read_user" =>
            Rule::roles(&[Role::Admin, Role::Moderator, Role::Auditor]).or_subject(),
        /// List the tenant's users.
        ListUsers = "list_users" => Rule::roles(&[Role::Admin, Role::Moderator, Role::Auditor]),
    }
}
