//! Command routes: every route here appends events, and only through `commands`.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use commands::CommandOutcome;
use domain::aggregate::Guarded;
use domain::api_keys::{ApiKeyCommand, KeyName};
use domain::identity::{Role, Roles, StreamId};
use domain::policy::Action;
use domain::users::{DisplayName, Email, UserCommand};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use crate::auth::new_api_key;
use crate::error::{ApiError, FieldError};
use crate::extract::{Caller, ExpectedVersion, IdPath, JsonBody};

/// The command routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", post(register_user))
        .route("/api/v1/users/{id}/display-name", post(change_display_name))
        .route("/api/v1/users/{id}/roles", post(change_user_roles))
        .route("/api/v1/users/{id}/deactivate", post(deactivate_user))
        .route("/api/v1/users/{id}/reactivate", post(reactivate_user))
        .route("/api/v1/api-keys", post(issue_api_key))
        .route("/api/v1/api-keys/{id}/revoke", post(revoke_api_key))
}

/// What a successful command changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandAccepted {
    /// The aggregate the command addressed.
    pub aggregate_id: Uuid,
    /// Its version after the command (also in the `ETag` header).
    pub version: u64,
    /// Give this to a query (`X-Consistency-Token` header or `consistency_token` parameter)
    /// to read your own write.
    pub consistency_token: String,
    /// Only when a key is issued: the key itself. Shown once, never stored, never shown again
    /// (not even to a retry with the same `Idempotency-Key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

/// Register a user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterUser {
    /// Unique within the tenant; compared case-insensitively.
    pub email: String,
    /// 1 to 64 characters.
    pub display_name: String,
    /// Roles (`admin`, `moderator`, `user`, `worker`, `auditor`); default `["user"]`.
    #[schema(value_type = Option<Vec<String>>)]
    pub roles: Option<Vec<Role>>,
}

/// Rename a user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeDisplayName {
    /// 1 to 64 characters.
    pub display_name: String,
}

/// Replace a user's roles.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeUserRoles {
    /// The complete new set of roles.
    #[schema(value_type = Vec<String>)]
    pub roles: Vec<Role>,
}

/// Issue an API key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueApiKey {
    /// What the key is for (1 to 64 characters).
    pub name: String,
    /// At least one role.
    #[schema(value_type = Vec<String>)]
    pub roles: Vec<Role>,
    /// When the key stops working; never if absent.
    pub expires_at: Option<DateTime<Utc>>,
}

pub(crate) fn field<T, E: domain::error::DomainError>(
    name: &str,
    parsed: Result<T, E>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    parsed
        .map_err(|error| {
            errors.push(FieldError {
                field: name.to_owned(),
                code: error.code().to_owned(),
                message: error.to_string(),
            });
        })
        .ok()
}

/// The response of every command route: status, `ETag`, `Location` for creations, and
/// `Idempotent-Replayed` when an earlier identical request's result is returned.
pub(crate) fn accepted(
    status: StatusCode,
    location: Option<&str>,
    outcome: CommandOutcome,
    api_key: Option<String>,
) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", outcome.version)) {
        headers.insert(header::ETAG, etag);
    }
    if let Some(Ok(location)) =
        location.map(|path| HeaderValue::from_str(&format!("{path}/{}", outcome.stream.id)))
    {
        headers.insert(header::LOCATION, location);
    }
    if outcome.replayed {
        headers.insert(
            HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        );
    }
    let body = CommandAccepted {
        aggregate_id: outcome.stream.id,
        version: outcome.version,
        consistency_token: outcome.token.to_string(),
        api_key: api_key.filter(|_| !outcome.replayed),
    };
    (status, headers, Json(body)).into_response()
}

/// Runs a user command for an authorized caller.
async fn user_command(
    state: &AppState,
    caller: &Caller,
    action: Action,
    user: Uuid,
    expected: ExpectedVersion,
    body: &impl Serialize,
    command: UserCommand,
) -> Result<CommandOutcome, ApiError> {
    let context = caller.may(action, Some(user), body)?;
    Ok(state
        .users
        .execute(&context, user, expected.0, command, Utc::now())
        .await?)
}

/// Register a new user.
#[utoipa::path(
    post, path = "/api/v1/users", tag = "users",
    request_body = RegisterUser,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 201, description = "Registered", body = CommandAccepted),
        (status = 409, description = "Email already registered", body = crate::error::Problem),
        (status = 422, description = "Invalid fields", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn register_user(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<RegisterUser>,
) -> Result<Response, ApiError> {
    let context = caller.may(Action::RegisterUser, None, &body)?;
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
    let roles = body
        .roles
        .map_or_else(|| Roles::from([Role::User]), Roles::from_iter);
    let command = UserCommand::Register {
        email,
        display_name,
        roles,
        at: Utc::now(),
    };
    let outcome = state
        .users
        .execute(&context, Uuid::now_v7(), None, command, Utc::now())
        .await?;
    Ok(accepted(
        StatusCode::CREATED,
        Some("/api/v1/users"),
        outcome,
        None,
    ))
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
        (status = 404, description = "No such user", body = crate::error::Problem),
        (status = 409, description = "Version conflict", body = crate::error::Problem),
        (status = 422, description = "Invalid or not allowed", body = crate::error::Problem),
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
    let mut errors = Vec::new();
    let Some(display_name) = field(
        "display_name",
        DisplayName::parse(&body.display_name),
        &mut errors,
    ) else {
        return Err(ApiError::validation(errors));
    };
    let command = UserCommand::ChangeDisplayName {
        display_name,
        at: Utc::now(),
    };
    let outcome = user_command(
        &state,
        &caller,
        Action::ChangeDisplayName,
        id,
        expected,
        &body,
        command,
    )
    .await?;
    Ok(accepted(StatusCode::OK, None, outcome, None))
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
        (status = 404, description = "No such user", body = crate::error::Problem),
        (status = 422, description = "Unchanged or not allowed", body = crate::error::Problem),
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
        roles: body.roles.iter().copied().collect(),
        at: Utc::now(),
    };
    let outcome = user_command(
        &state,
        &caller,
        Action::ChangeUserRoles,
        id,
        expected,
        &body,
        command,
    )
    .await?;
    Ok(accepted(StatusCode::OK, None, outcome, None))
}

/// Deactivate a user (admins).
#[utoipa::path(
    post, path = "/api/v1/users/{id}/deactivate", tag = "users",
    params(("id" = Uuid, Path, description = "User id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Deactivated", body = CommandAccepted),
        (status = 404, description = "No such user", body = crate::error::Problem),
        (status = 409, description = "Version conflict", body = crate::error::Problem),
        (status = 422, description = "Already deactivated", body = crate::error::Problem),
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
    let outcome = user_command(
        &state,
        &caller,
        Action::DeactivateUser,
        id,
        expected,
        &(),
        command,
    )
    .await?;
    Ok(accepted(StatusCode::OK, None, outcome, None))
}

/// Reactivate a deactivated user (admins).
#[utoipa::path(
    post, path = "/api/v1/users/{id}/reactivate", tag = "users",
    params(("id" = Uuid, Path, description = "User id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Reactivated", body = CommandAccepted),
        (status = 404, description = "No such user", body = crate::error::Problem),
        (status = 409, description = "Version conflict", body = crate::error::Problem),
        (status = 422, description = "Already active", body = crate::error::Problem),
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
    let outcome = user_command(
        &state,
        &caller,
        Action::ReactivateUser,
        id,
        expected,
        &(),
        command,
    )
    .await?;
    Ok(accepted(StatusCode::OK, None, outcome, None))
}

/// Issue an API key (admins). The key is in the response once and never again.
#[utoipa::path(
    post, path = "/api/v1/api-keys", tag = "api-keys",
    request_body = IssueApiKey,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 201, description = "Issued; `api_key` holds the key", body = CommandAccepted),
        (status = 422, description = "Invalid fields", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn issue_api_key(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<IssueApiKey>,
) -> Result<Response, ApiError> {
    let context = caller.may(Action::IssueApiKey, None, &body)?;
    let mut errors = Vec::new();
    let Some(name) = field("name", KeyName::parse(&body.name), &mut errors) else {
        return Err(ApiError::validation(errors));
    };
    let key = Uuid::now_v7();
    let (secret, secret_hash) = new_api_key(&context.tenant, key);
    let command = ApiKeyCommand::Issue {
        name,
        roles: body.roles.iter().copied().collect(),
        expires_at: body.expires_at,
        secret_hash,
        at: Utc::now(),
    };
    let stream = StreamId::new(context.tenant.clone(), key);
    let name = command.name();
    let outcome = state
        .api_keys
        .execute(&context, &stream, Guarded::new(command), name, Utc::now())
        .await?;
    Ok(accepted(StatusCode::CREATED, None, outcome, Some(secret)))
}

/// Revoke an API key (admins). Requests with it are refused at once.
#[utoipa::path(
    post, path = "/api/v1/api-keys/{id}/revoke", tag = "api-keys",
    params(("id" = Uuid, Path, description = "Key id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Revoked", body = CommandAccepted),
        (status = 404, description = "No such key", body = crate::error::Problem),
        (status = 422, description = "Already revoked", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
) -> Result<Response, ApiError> {
    let context = caller.may(Action::RevokeApiKey, Some(id), &())?;
    let command = ApiKeyCommand::Revoke { at: Utc::now() };
    let stream = StreamId::new(context.tenant.clone(), id);
    let name = command.name();
    let outcome = state
        .api_keys
        .execute(&context, &stream, Guarded::new(command), name, Utc::now())
        .await?;
    Ok(accepted(StatusCode::OK, None, outcome, None))
}
