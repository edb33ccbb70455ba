//! Command routes: every route here appends events, and only through `commands`.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use commands::CommandOutcome;
use domain::users::{DisplayName, Email, UserCommand, UserError, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use crate::error::{ApiError, FieldError};
use crate::extract::{Context, ExpectedVersion, IdPath, JsonBody};

/// The command routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", post(register_user))
        .route("/api/v1/users/{id}/display-name", post(change_display_name))
        .route("/api/v1/users/{id}/deactivate", post(deactivate_user))
        .route("/api/v1/users/{id}/reactivate", post(reactivate_user))
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
}

/// Register a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterUser {
    /// Unique within the tenant; compared case-insensitively.
    pub email: String,
    /// 1 to 64 characters.
    pub display_name: String,
}

/// Rename a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeDisplayName {
    /// 1 to 64 characters.
    pub display_name: String,
}

fn field<T>(name: &str, parsed: Result<T, UserError>, errors: &mut Vec<FieldError>) -> Option<T> {
    parsed
        .map_err(|error| {
            errors.push(FieldError {
                field: name.to_owned(),
                code: domain::error::DomainError::code(&error).to_owned(),
                message: error.to_string(),
            });
        })
        .ok()
}

fn accepted(status: StatusCode, aggregate_id: Uuid, outcome: CommandOutcome) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", outcome.version)) {
        headers.insert(header::ETAG, etag);
    }
    if status == StatusCode::CREATED {
        if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/users/{aggregate_id}")) {
            headers.insert(header::LOCATION, location);
        }
    }
    let body = CommandAccepted {
        aggregate_id,
        version: outcome.version,
        consistency_token: outcome.token.to_string(),
    };
    (status, headers, Json(body)).into_response()
}

async fn run(
    state: &AppState,
    context: Context,
    user: Uuid,
    expected: ExpectedVersion,
    command: UserCommand,
) -> Result<CommandOutcome, ApiError> {
    Ok(state
        .users
        .execute(
            &context.0,
            UserId::from_uuid(user),
            expected.0,
            command,
            Utc::now(),
        )
        .await?)
}

/// Register a new user.
#[utoipa::path(
    post, path = "/api/v1/users", tag = "users",
    request_body = RegisterUser,
    responses(
        (status = 201, description = "Registered", body = CommandAccepted),
        (status = 409, description = "Email already registered", body = crate::error::Problem),
        (status = 422, description = "Invalid fields", body = crate::error::Problem),
    )
)]
pub async fn register_user(
    State(state): State<AppState>,
    context: Context,
    JsonBody(body): JsonBody<RegisterUser>,
) -> Result<Response, ApiError> {
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
    let id = Uuid::now_v7();
    let at = Utc::now();
    let command = UserCommand::Register {
        email,
        display_name,
        at,
    };
    let outcome = run(&state, context, id, ExpectedVersion(None), command).await?;
    Ok(accepted(StatusCode::CREATED, id, outcome))
}

/// Change a user's display name.
#[utoipa::path(
    post, path = "/api/v1/users/{id}/display-name", tag = "users",
    params(("id" = Uuid, Path, description = "User id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\"")),
    request_body = ChangeDisplayName,
    responses(
        (status = 200, description = "Renamed", body = CommandAccepted),
        (status = 404, description = "No such user", body = crate::error::Problem),
        (status = 409, description = "Version conflict", body = crate::error::Problem),
        (status = 422, description = "Invalid or not allowed", body = crate::error::Problem),
    )
)]
pub async fn change_display_name(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    context: Context,
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
    let outcome = run(&state, context, id, expected, command).await?;
    Ok(accepted(StatusCode::OK, id, outcome))
}

/// Deactivate a user.
#[utoipa::path(
    post, path = "/api/v1/users/{id}/deactivate", tag = "users",
    params(("id" = Uuid, Path, description = "User id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\"")),
    responses(
        (status = 200, description = "Deactivated", body = CommandAccepted),
        (status = 404, description = "No such user", body = crate::error::Problem),
        (status = 409, description = "Version conflict", body = crate::error::Problem),
        (status = 422, description = "Already deactivated", body = crate::error::Problem),
    )
)]
pub async fn deactivate_user(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    context: Context,
) -> Result<Response, ApiError> {
    let command = UserCommand::Deactivate { at: Utc::now() };
    let outcome = run(&state, context, id, expected, command).await?;
    Ok(accepted(StatusCode::OK, id, outcome))
}

/// Reactivate a deactivated user.
#[utoipa::path(
    post, path = "/api/v1/users/{id}/reactivate", tag = "users",
    params(("id" = Uuid, Path, description = "User id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\"")),
    responses(
        (status = 200, description = "Reactivated", body = CommandAccepted),
        (status = 404, description = "No such user", body = crate::error::Problem),
        (status = 409, description = "Version conflict", body = crate::error::Problem),
        (status = 422, description = "Already active", body = crate::error::Problem),
    )
)]
pub async fn reactivate_user(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    context: Context,
) -> Result<Response, ApiError> {
    let command = UserCommand::Reactivate { at: Utc::now() };
    let outcome = run(&state, context, id, expected, command).await?;
    Ok(accepted(StatusCode::OK, id, outcome))
}
