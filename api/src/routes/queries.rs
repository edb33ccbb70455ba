//! Query routes: they read projections only, and honour consistency tokens.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::identity::{StreamId, TenantId};
use domain::policy::Action;
use projections::consistency;
use projections::users::{self as users_model, UserView, UsersProjection};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, Consistency, IdPath, QueryParams};

/// The query routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", get(list_users))
        .route("/api/v1/users/{id}", get(get_user))
}

/// A user as the users projection shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    /// The user's id.
    pub id: Uuid,
    /// Normalised email address.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// `active` or `deactivated`.
    pub status: String,
    /// Role names.
    pub roles: Vec<String>,
    /// The stream version this reflects (use as `If-Match` for commands).
    pub version: i64,
    /// When the user registered.
    pub registered_at: DateTime<Utc>,
    /// When the user last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<UserView> for UserDto {
    fn from(view: UserView) -> Self {
        Self {
            id: view.user_id,
            email: view.email,
            display_name: view.display_name,
            status: view.status,
            roles: view.roles,
            version: view.version,
            registered_at: view.registered_at,
            updated_at: view.updated_at,
        }
    }
}

/// A page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    /// The users of this page, in id order.
    pub items: Vec<UserDto>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

/// Paging parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListUsers {
    /// Return users after this id (the previous page's `next_cursor`).
    pub after: Option<Uuid>,
    /// Page size, 1 to the configured maximum (default 20).
    pub limit: Option<u32>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// Waits for the token, if any, on `projection`. A token must name a stream of
/// `aggregate_type` in the caller's tenant.
pub(crate) async fn consistent(
    state: &AppState,
    tenant: &TenantId,
    token: Consistency,
    aggregate_type: &str,
    projection: &'static str,
) -> Result<(), ApiError> {
    let Some(token) = token.0 else {
        return Ok(());
    };
    let own_stream = token
        .aggregate_id
        .parse::<StreamId>()
        .is_ok_and(|stream| stream.tenant == *tenant);
    if token.aggregate_type != aggregate_type || !own_stream {
        return Err(ApiError::bad_request(
            "invalid_consistency_token",
            format!("this token was not issued by a command on a {aggregate_type}"),
        ));
    }
    consistency::wait_for(
        &state.pool,
        projection,
        &token,
        state.settings.consistency_wait(),
    )
    .await?;
    Ok(())
}

/// One user.
#[utoipa::path(
    get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "User id"),
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command"),
           ("consistency_token" = Option<String>, Query, description = "Token from a command")),
    responses(
        (status = 200, description = "The user", body = UserDto),
        (status = 404, description = "No such user", body = crate::error::Problem),
        (status = 503, description = "Projection behind the token", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_user(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    token: Consistency,
) -> Result<Response, ApiError> {
    let tenant = caller.may_read(Action::ReadUser, Some(id))?;
    consistent(&state, tenant, token, "User", UsersProjection::NAME).await?;
    let Some(user) = users_model::get(&state.pool, tenant.as_str(), id).await? else {
        return Err(ApiError::NotFound {
            code: "user_not_found",
            detail: format!("no user with id {id}"),
        });
    };
    let etag = HeaderValue::from_str(&format!("\"{}\"", user.version)).ok();
    let mut response = Json(UserDto::from(user)).into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// A page of users.
#[utoipa::path(
    get, path = "/api/v1/users", tag = "users",
    params(ListUsers,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "A page of users", body = UserPage),
        (status = 400, description = "Invalid parameters", body = crate::error::Problem),
        (status = 503, description = "Projection behind the token", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<ListUsers>,
    token: Consistency,
) -> Result<Json<UserPage>, ApiError> {
    let tenant = caller.may_read(Action::ListUsers, None)?;
    let max = state.settings.queries.max_page_size;
    let limit = params.limit.unwrap_or(20.min(max));
    if !(1..=max).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {max}"),
        ));
    }
    consistent(&state, tenant, token, "User", UsersProjection::NAME).await?;
    let users = users_model::list(
        &state.pool,
        tenant.as_str(),
        params.after,
        i64::from(limit) + 1,
    )
    .await?;
    let more = users.len() > limit as usize;
    let items: Vec<UserDto> = users
        .into_iter()
        .take(limit as usize)
        .map(UserDto::from)
        .collect();
    let next_cursor = if more {
        items.last().map(|user| user.id)
    } else {
        None
    };
    Ok(Json(UserPage { items, next_cursor }))
}
