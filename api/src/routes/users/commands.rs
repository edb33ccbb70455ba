//! User command routes: register, rename, roles, deactivate, reactivate. Each appends events
//! only through `commands`.

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
use crate::http::schema::GrantableRole;
use crate::routes::AppState;

/// Register a user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"email": "ada@example.org", "display_name": "Ada", "roles": ["user"]})))]
pub struct RegisterUser {
    /// Unique within the tenant; compared case-insensitively.
    pub email: String,
    /// 1 to 64 characters.
    pub display_name: String,
    /// Roles; default `["user"]`.
    #[schema(max_items = 5)]
    pub roles: Option<Vec<GrantableRole>>,
}

/// Rename a user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"display_name": "Ada Lovelace"})))]
pub struct ChangeDisplayName {
    /// 1 to 64 characters.
    pub display_name: String,
}

/// Replace a user's roles.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"roles": ["user", "moderator"]})))]
pub struct ChangeUserRoles {
    /// The complete new set of roles.
    #[schema(max_items = 5)]
    pub roles: Vec<GrantableRole>,
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
