//! The users context over HTTP: commands that register and change users, queries that read
//! the users projection.

pub mod commands;
pub mod queries;

use domain::policy::UserAction;
use utoipa_axum::routes;

pub use commands::{ChangeDisplayName, ChangeUserRoles, RegisterUser};
pub use queries::{ListUsers, UserDto, UserPage};

use crate::routes::Routes;

/// The users routes.
pub fn routes() -> Routes {
    Routes::new()
        .tag(
            "users",
            "Users: register, rename, roles, deactivate, reactivate",
        )
        .command(UserAction::RegisterUser, routes!(commands::register_user))
        .command(
            UserAction::ChangeDisplayName,
            routes!(commands::change_display_name),
        )
        .command(
            UserAction::ChangeUserRoles,
            routes!(commands::change_user_roles),
        )
        .command(
            UserAction::DeactivateUser,
            routes!(commands::deactivate_user),
        )
        .command(
            UserAction::ReactivateUser,
            routes!(commands::reactivate_user),
        )
        .query(UserAction::ReadUser, routes!(queries::get_user))
        .query(UserAction::ListUsers, routes!(queries::list_users))
}
