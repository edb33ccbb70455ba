//! A member's activity: their posts and comments, newest first, as the reader may see them.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::policy::CommunityAction;
use projections::community::{self as model, ActivityView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::caught_up;
use super::moderation::read_cursor;
use super::reading::reader;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, Consistency, IdPath, QueryParams};
use crate::http::respond::{not_found, page_limit};
use crate::routes::AppState;

/// A post or comment in a member's activity.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityDto {
    /// `post` or `comment`.
    pub kind: String,
    /// The post's or comment's id.
    pub id: Uuid,
    /// The post (a comment's post, or the post itself).
    pub post_id: Uuid,
    /// A post's title; absent for a comment.
    pub title: Option<String>,
    /// Its text (markdown, as written).
    pub body: String,
    /// Whether it was removed (listed only for its author and staff).
    pub removed: bool,
    /// Whether a moderator hid it (listed only for its author and staff).
    pub hidden: bool,
    /// When it was written.
    pub written_at: DateTime<Utc>,
}

impl From<ActivityView> for ActivityDto {
    fn from(view: ActivityView) -> Self {
        Self {
            kind: view.kind,
            id: view.id,
            post_id: view.post_id,
            title: view.title,
            body: view.body,
            removed: view.removed,
            hidden: view.hidden,
            written_at: view.written_at,
        }
    }
}

/// A page of a member's activity.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityPage {
    /// Posts and comments, newest first.
    pub items: Vec<ActivityDto>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Paging parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListActivity {
    /// The previous page's `next_cursor`: opaque, as this API wrote it.
    #[param(
        max_length = 54,
        pattern = "^[0-9]{1,16}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub after: Option<String>,
    /// Page size: 1 to `queries.max_page_size` (100 unless configured otherwise); default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// A member's posts and comments, newest first (members, auditors). `404` when the reader sees
/// nothing of theirs.
#[utoipa::path(
    get, path = "/api/v1/community/members/{id}/activity", tag = "community",
    params(("id" = Uuid, Path, description = "The member's account (user or API key id)"),
           ListActivity,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "A page of the member's activity", body = ActivityPage),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 404, description = "Nothing of this member the reader may see", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn activity(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    QueryParams(params): QueryParams<ListActivity>,
    token: Consistency,
) -> Result<Json<ActivityPage>, ApiError> {
    let tenant = caller.may_read(CommunityAction::ReadCommunity, None)?;
    let limit = page_limit(params.limit, state.settings.queries.max_page_size)?;
    let after = params.after.as_deref().map(read_cursor).transpose()?;
    caught_up(&state, tenant, token).await?;
    let (page, next) = model::activity(
        &state.read_pool,
        tenant.as_str(),
        id,
        reader(&caller),
        after,
        i64::from(limit),
    )
    .await?;
    if page.is_empty() && after.is_none() {
        return Err(not_found("activity_not_found", "activity of member", id));
    }
    Ok(Json(ActivityPage {
        items: page.into_iter().map(ActivityDto::from).collect(),
        next_cursor: next.map(|(at, id)| format!("{}_{id}", at.timestamp_micros())),
    }))
}
