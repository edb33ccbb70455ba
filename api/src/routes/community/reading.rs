//! Post routes that read: one post, and a category's posts, as the reader may see them, with
//! their comment counts and reactions.

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::community::sees_removed;
use domain::identity::TenantId;
use domain::policy::CommunityAction;
use projections::community::{
    self as model, Cursor, PostOrder, PostSummary, PostView, ReactionSummary, Reader,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::caught_up;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, Consistency, IdPath, QueryParams};
use crate::http::respond::{not_found, page_limit, with_etag};
use crate::http::schema;
use crate::routes::AppState;

/// A post.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostDto {
    /// Its id.
    pub id: Uuid,
    /// The category it was written in.
    pub category_id: Uuid,
    /// The account that wrote it.
    pub author: Uuid,
    /// Its title.
    pub title: String,
    /// Its text: markdown exactly as written, never rendered by the server.
    pub body: String,
    /// Whether it takes no new comments.
    pub locked: bool,
    /// Whether it is listed before the others of its category.
    pub pinned: bool,
    /// Whether it was removed. Only its author and moderators, admins and auditors ever see a
    /// removed post; everyone else gets `404`.
    pub removed: bool,
    /// Whether a moderator hid it over a report; shown, like `removed`, to its author and staff
    /// only.
    pub hidden: bool,
    /// How many times its author edited it.
    pub edits: i32,
    /// Comments readers see, replies included.
    pub comments: i64,
    /// The reactions to it.
    pub reactions: ReactionsDto,
    /// The stream version this reflects (use as `If-Match` for commands).
    pub version: i64,
    /// When it was written.
    pub written_at: DateTime<Utc>,
    /// When it was last edited, if ever.
    pub edited_at: Option<DateTime<Utc>>,
    /// Its writing, its last edit or its latest comment, whichever is last.
    pub last_activity_at: DateTime<Utc>,
}

/// The reactions to a post or comment.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ReactionsDto {
    /// How many members reacted with each kind (kinds nobody used are absent).
    #[schema(value_type = BTreeMap<schema::ReactionKind, i64>)]
    pub counts: BTreeMap<String, i64>,
    /// The kinds the reader reacted with.
    #[schema(value_type = Vec<schema::ReactionKind>)]
    pub mine: Vec<String>,
}

impl From<ReactionSummary> for ReactionsDto {
    fn from(summary: ReactionSummary) -> Self {
        Self {
            counts: summary.counts,
            mine: summary.mine,
        }
    }
}

impl PostDto {
    fn of(view: PostView, reactions: ReactionsDto) -> Self {
        Self {
            id: view.post_id,
            category_id: view.category_id,
            author: view.author,
            title: view.title,
            body: view.body,
            locked: view.locked,
            pinned: view.pinned,
            removed: view.removed,
            hidden: view.hidden,
            edits: view.edits,
            comments: view.comments,
            reactions,
            version: view.version,
            written_at: view.written_at,
            edited_at: view.edited_at,
            last_activity_at: view.last_activity_at,
        }
    }
}

/// A post in a list (without its text).
#[derive(Debug, Serialize, ToSchema)]
pub struct PostSummaryDto {
    /// Its id.
    pub id: Uuid,
    /// The category it was written in.
    pub category_id: Uuid,
    /// The account that wrote it.
    pub author: Uuid,
    /// Its title.
    pub title: String,
    /// Whether it takes no new comments.
    pub locked: bool,
    /// Whether it is listed first.
    pub pinned: bool,
    /// Whether it was removed (listed only for its author and staff).
    pub removed: bool,
    /// Whether a moderator hid it (listed only for its author and staff).
    pub hidden: bool,
    /// How many times its author edited it.
    pub edits: i32,
    /// Comments readers see, replies included.
    pub comments: i64,
    /// The reactions to it.
    pub reactions: ReactionsDto,
    /// Its stream version.
    pub version: i64,
    /// When it was written.
    pub written_at: DateTime<Utc>,
    /// Its writing, its last edit or its latest comment, whichever is last.
    pub last_activity_at: DateTime<Utc>,
}

impl PostSummaryDto {
    fn of(view: PostSummary, reactions: ReactionsDto) -> Self {
        Self {
            id: view.post_id,
            category_id: view.category_id,
            author: view.author,
            title: view.title,
            locked: view.locked,
            pinned: view.pinned,
            removed: view.removed,
            hidden: view.hidden,
            edits: view.edits,
            comments: view.comments,
            reactions,
            version: view.version,
            written_at: view.written_at,
            last_activity_at: view.last_activity_at,
        }
    }
}

/// A page of posts.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostPage {
    /// The posts of this page: pinned first, then in the order asked for.
    pub items: Vec<PostSummaryDto>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The order of a category's posts.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Newest written first.
    #[default]
    Newest,
    /// Most recently written or edited first.
    Active,
}

/// Paging parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListPosts {
    /// `newest` (default) or `active`; pinned posts come first in either.
    #[param(inline)]
    pub order: Option<Order>,
    /// Return posts after this cursor (the previous page's `next_cursor`, same `order`).
    #[param(
        max_length = 55,
        pattern = "^[01]_[0-9]{1,16}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub after: Option<String>,
    /// Page size: 1 to `queries.max_page_size` (100 unless configured otherwise); default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// Who is reading, as the community queries take it.
pub(super) fn reader(caller: &Caller) -> Reader {
    Reader {
        account: caller.principal.account,
        sees_removed: sees_removed(&caller.principal.roles),
    }
}

/// Post `post` of `tenant`, if `reader` may see it.
///
/// # Errors
/// `404 post_not_found`, or a database failure.
pub(super) async fn visible_post(
    state: &AppState,
    tenant: &TenantId,
    post: Uuid,
    reader: Reader,
) -> Result<PostView, ApiError> {
    model::get_post(&state.read_pool, tenant.as_str(), post, reader)
        .await?
        .ok_or_else(|| not_found("post_not_found", "post", post))
}

/// The reactions to each of `targets`, as `reader` sees them.
pub(super) async fn reactions_to(
    state: &AppState,
    tenant: &TenantId,
    targets: &[Uuid],
    reader: Reader,
) -> Result<HashMap<Uuid, ReactionSummary>, ApiError> {
    Ok(model::reactions(&state.read_pool, tenant.as_str(), targets, reader).await?)
}

/// One post. A removed post is shown (marked) to its author and to moderators, admins and
/// auditors only.
#[utoipa::path(
    get, path = "/api/v1/community/posts/{id}", tag = "community",
    params(("id" = Uuid, Path, description = "Post id"),
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command"),
           ("consistency_token" = Option<String>, Query, description = "Token from a command")),
    responses(
        (status = 200, description = "The post", body = PostDto),
        (status = 404, description = "No such post (or removed, for this reader)", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_post(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    token: Consistency,
) -> Result<Response, ApiError> {
    let tenant = caller.may_read(CommunityAction::ReadCommunity, None)?;
    caught_up(&state, tenant, token).await?;
    let post = post_of(&state, tenant, id, reader(&caller)).await?;
    let version = post.version;
    Ok(with_etag(post, version))
}

/// Post `post` of `tenant` with its reactions, if `reader` may see it.
///
/// # Errors
/// `404 post_not_found`, or a database failure.
pub(super) async fn post_of(
    state: &AppState,
    tenant: &TenantId,
    post: Uuid,
    reader: Reader,
) -> Result<PostDto, ApiError> {
    let view = visible_post(state, tenant, post, reader).await?;
    let mut reactions = reactions_to(state, tenant, &[post], reader).await?;
    let reactions = reactions.remove(&post).unwrap_or_default().into();
    Ok(PostDto::of(view, reactions))
}

/// A page of a category's posts: pinned first, then newest or most active first.
#[utoipa::path(
    get, path = "/api/v1/community/categories/{id}/posts", tag = "community",
    params(("id" = Uuid, Path, description = "Category id"),
           ListPosts,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "A page of posts", body = PostPage),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 404, description = "No such category", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_posts(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    QueryParams(params): QueryParams<ListPosts>,
    token: Consistency,
) -> Result<Json<PostPage>, ApiError> {
    let tenant = caller.may_read(CommunityAction::ReadCommunity, None)?;
    caught_up(&state, tenant, token).await?;
    posts_of(&state, tenant, id, reader(&caller), &params)
        .await
        .map(Json)
}

/// A page of category `id`'s posts that `reader` may see.
///
/// # Errors
/// `400` for bad paging parameters, `404 category_not_found`, or a database failure.
pub(super) async fn posts_of(
    state: &AppState,
    tenant: &TenantId,
    id: Uuid,
    reader: Reader,
    params: &ListPosts,
) -> Result<PostPage, ApiError> {
    let limit = page_limit(params.limit, state.settings.queries.max_page_size)?;
    let after = params
        .after
        .as_deref()
        .map(|raw| {
            raw.parse::<Cursor>().map_err(|()| {
                ApiError::bad_request("invalid_cursor", "after: not a cursor from this API")
            })
        })
        .transpose()?;
    model::get_category(&state.read_pool, tenant.as_str(), id)
        .await?
        .ok_or_else(|| not_found("category_not_found", "category", id))?;
    let order = match params.order.unwrap_or_default() {
        Order::Newest => PostOrder::Newest,
        Order::Active => PostOrder::Active,
    };
    let (posts, next) = model::list_posts(
        &state.read_pool,
        tenant.as_str(),
        id,
        order,
        reader,
        after,
        i64::from(limit),
    )
    .await?;
    let ids: Vec<Uuid> = posts.iter().map(|post| post.post_id).collect();
    let mut reactions = reactions_to(state, tenant, &ids, reader).await?;
    Ok(PostPage {
        items: posts
            .into_iter()
            .map(|post| {
                let summary = reactions.remove(&post.post_id).unwrap_or_default();
                PostSummaryDto::of(post, summary.into())
            })
            .collect(),
        next_cursor: next.map(|cursor| cursor.to_string()),
    })
}
