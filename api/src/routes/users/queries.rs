//! User query routes: one user and pages of users, read from the users projection, honouring
//! consistency tokens.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::policy::UserAction;
use projections::users::{self as users_model, UserView, UsersProjection};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::http::error::{ApiError, Problem};
use crate::http::extract::{consistent, Caller, Consistency, IdPath, QueryParams};
use crate::http::respond::{not_found, page_limit, paged, read_ahead, with_etag};
use crate::routes::AppState;

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
#[into_params(parameter_in = Query)]
pub struct ListUsers {
    /// Return users after this id (the previous page's `next_cursor`).
    pub after: Option<Uuid>,
    /// Page size: 1 to `queries.max_page_size` (100 unless configured otherwise); default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// One user.
#[utoipa::path(
    get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "User id"),
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command"),
           ("consistency_token" = Option<String>, Query, description = "Token from a command")),
    responses(
        (status = 200, description = "The user", body = UserDto),
        (status = 404, description = "No such user", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_user(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    token: Consistency,
) -> Result<Response, ApiError> {
    let tenant = caller.may_read(UserAction::ReadUser, Some(id))?;
    consistent(&state, tenant, token, &["User"], UsersProjection::NAME).await?;
    let user = users_model::get(&state.read_pool, tenant.as_str(), id)
        .await?
        .ok_or_else(|| not_found("user_not_found", "user", id))?;
    let version = user.version;
    Ok(with_etag(UserDto::from(user), version))
}

/// A page of users.
#[utoipa::path(
    get, path = "/api/v1/users", tag = "users",
    params(ListUsers,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "A page of users", body = UserPage),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<ListUsers>,
    token: Consistency,
) -> Result<Json<UserPage>, ApiError> {
    let tenant = caller.may_read(UserAction::ListUsers, None)?;
    let limit = page_limit(params.limit, state.settings.queries.max_page_size)?;
    consistent(&state, tenant, token, &["User"], UsersProjection::NAME).await?;
    let users = users_model::list(
        &state.read_pool,
        tenant.as_str(),
        params.after,
        read_ahead(limit),
    )
    .await?;
    let (users, next_cursor) = paged(users, limit, |last| last.user_id);
    Ok(Json(UserPage {
        items: users.into_iter().map(UserDto::from).collect(),
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::queries::QuerySettings;
    use crate::http::schema::parameter;

    #[test]
    fn the_documented_page_size_is_the_default_configurations() {
        let max = QuerySettings::default().max_page_size;
        let limit = parameter::<ListUsers>("limit");
        assert_eq!(limit["maximum"], max);
        assert_eq!(limit["minimum"], 1);
        assert!(page_limit(Some(1), max).is_ok() && page_limit(Some(max), max).is_ok());
        assert!(page_limit(Some(0), max).is_err() && page_limit(Some(max + 1), max).is_err());
        assert_eq!(
            parameter::<crate::routes::jobs::queries::ListJobs>("limit"),
            limit
        );
    }
}
