//! User command routes: register, rename, roles, deactivate, reactivate. Each appends events
//! only through `commands`.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::response::Response;
use chrono::Utc;
use domain::identity::{Role, Roles};
use domain::policy::UserAction;
use domain::users::{DisplayName, Email, UserCommand};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, ExpectedVersion, IdPath, JsonBody};
use crate::http::respond::{changed, created, field, one_field, CommandAccepted};
use crate::http::schema::{self, GrantableRole};
use crate::routes::AppState;

/// Register a user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"email": "ada@example.org", "display_name": "Ada", "roles": ["user"]})))]
pub struct RegisterUser {
    /// Unique within the tenant; compared case-insensitively.
    #[schema(value_type = schema::Email)]
    pub email: String,
    /// How the user is shown to others.
    #[schema(value_type = schema::DisplayName)]
    pub display_name: String,
    /// Roles, each at most once; default `["user"]`.
    #[serde(default, deserialize_with = "schema::unique_or_none")]
    #[schema(max_items = 5)]
    pub roles: Option<BTreeSet<GrantableRole>>,
}

/// Rename a user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"display_name": "Ada Lovelace"})))]
pub struct ChangeDisplayName {
    /// How the user is shown to others.
    #[schema(value_type = schema::DisplayName)]
    pub display_name: String,
}

/// Replace a user's roles.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"roles": ["user", "moderator"]})))]
pub struct ChangeUserRoles {
    /// The complete new set of roles, each at most once.
    #[serde(deserialize_with = "schema::unique")]
    #[schema(max_items = 5)]
    pub roles: BTreeSet<GrantableRole>,
}

/// Runs a command on an existing user for an authorized caller: `200` with what it changed.
async fn user_command(
    state: &AppState,
    caller: &Caller,
    action: UserAction,
    user: Uuid,
    expected: ExpectedVersion,
    body: &impl Serialize,
    command: UserCommand,
) -> Result<Response, ApiError> {
    let context = caller.may(action, Some(user), body)?;
    let outcome = state
        .write
        .users
        .execute(&context, user, expected.0, command, Utc::now())
        .await?;
    Ok(changed(outcome))
}

/// Register a new user.
#[utoipa::path(
    post, path = "/api/v1/users", tag = "users",
    request_body = RegisterUser,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 201, description = "Registered", body = CommandAccepted),
        (status = 409, description = "Email already registered", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn register_user(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<RegisterUser>,
) -> Result<Response, ApiError> {
    let context = caller.may(UserAction::RegisterUser, None, &body)?;
    let mut errors = Vec::new();
    let email = field("email", Email::parse(&body.email), &mut errors);
    let display_name = field(
        "display_name",
        DisplayName::parse(&body.display_name),
        &mut errors,
    );
    let (Some(email), Some(display_name)) = (email, display_name) else {
        return Err(ApiError::validation(errors));
    };
    let roles = body.roles.map_or_else(
        || Roles::from([Role::User]),
        |roles| roles.into_iter().map(Role::from).collect(),
    );
    let command = UserCommand::Register {
        email,
        display_name,
        roles,
        at: Utc::now(),
    };
    let outcome = state
        .write
        .users
        .execute(&context, Uuid::now_v7(), None, command, Utc::now())
        .await?;
    Ok(created("/api/v1/users", outcome, None))
}

/// Change a user's display name (admins, or the user themself).
#[utoipa::path(
    post, path = "/api/v1/users/{id}/display-name", tag = "users",
    params(("id" = Uuid, Path, description = "User id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = ChangeDisplayName,
    responses(
        (status = 200, description = "Renamed", body = CommandAccepted),
        (status = 404, description = "No such user", body = Problem),
        (status = 409, description = "Version conflict", body = Problem),
        (status = 422, description = "Invalid or not allowed", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn change_display_name(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
    JsonBody(body): JsonBody<ChangeDisplayName>,
) -> Result<Response, ApiError> {
    let display_name = one_field("display_name", DisplayName::parse(&body.display_name))?;
    let command = UserCommand::ChangeDisplayName {
        display_name,
        at: Utc::now(),
    };
    user_command(
        &state,
        &caller,
        UserAction::ChangeDisplayName,
        id,
        expected,
        &body,
        command,
    )
    .await
}

/// Replace a user's roles (admins).
#[utoipa::path(
    post, path = "/api/v1/users/{id}/roles", tag = "users",
    params(("id" = Uuid, Path, description = "User id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = ChangeUserRoles,
    responses(
        (status = 200, description = "Roles replaced", body = CommandAccepted),
        (status = 404, description = "No such user", body = Problem),
        (status = 422, description = "Unchanged or not allowed", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn change_user_roles(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
    JsonBody(body): JsonBody<ChangeUserRoles>,
) -> Result<Response, ApiError> {
    let command = UserCommand::ChangeRoles {
        roles: body.roles.iter().copied().map(Role::from).collect(),
        at: Utc::now(),
    };
    user_command(
        &state,
        &caller,
        UserAction::ChangeUserRoles,
        id,
        expected,
        &body,
        command,
    )
    .await
}

/// Deactivate a user (admins).
#[utoipa::path(
    post, path = "/api/v1/users/{id}/deactivate", tag = "users",
    params(("id" = Uuid, Path, description = "User id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Deactivated", body = CommandAccepted),
        (status = 404, description = "No such user", body = Problem),
        (status = 409, description = "Version conflict", body = Problem),
        (status = 422, description = "Already deactivated", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn deactivate_user(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
) -> Result<Response, ApiError> {
    let command = UserCommand::Deactivate { at: Utc::now() };
    user_command(
        &state,
        &caller,
        UserAction::DeactivateUser,
        id,
        expected,
        &(),
        command,
    )
    .await
}

/// Reactivate a deactivated user (admins).
#[utoipa::path(
    post, path = "/api/v1/users/{id}/reactivate", tag = "users",
    params(("id" = Uuid, Path, description = "User id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Reactivated", body = CommandAccepted),
        (status = 404, description = "No such user", body = Problem),
        (status = 409, description = "Version conflict", body = Problem),
        (status = 422, description = "Already active", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn reactivate_user(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
) -> Result<Response, ApiError> {
    let command = UserCommand::Reactivate { at: Utc::now() };
    user_command(
        &state,
        &caller,
        UserAction::ReactivateUser,
        id,
        expected,
        &(),
        command,
    )
    .await
}

#[cfg(test)]
mod tests {
    use domain::identity::Role;

    use super::*;
    use crate::http::schema::property;

    #[test]
    fn roles_are_documented_as_a_set_of_the_grantable_ones() {
        for roles in [
            property::<RegisterUser>("roles"),
            property::<ChangeUserRoles>("roles"),
            property::<crate::routes::api_keys::IssueApiKey>("roles"),
        ] {
            assert_eq!(roles["maxItems"], Role::GRANTABLE.len());
            assert_eq!(roles["uniqueItems"], true);
        }
        let body = serde_json::json!({"roles": ["user", "user"]});
        assert!(serde_json::from_value::<ChangeUserRoles>(body).is_err());
    }
}
