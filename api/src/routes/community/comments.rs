//! Comment routes: members comment on posts and reply to comments (one level deep), authors
//! edit and remove their own, moderators remove; readers read a post's threads.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use commands::community::NewComment;
use domain::community::{Body, CommentCommand};
use domain::identity::TenantId;
use domain::policy::CommunityAction;
use projections::community::{self as model, CommentView, ReactionSummary, Reader, Thread};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::caught_up;
use super::reading::{reactions_to, reader, visible_post, ReactionsDto};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, Consistency, ExpectedVersion, IdPath, JsonBody, QueryParams};
use crate::http::respond::{
    changed, created, not_found, one_field, page_limit, with_etag, CommandAccepted,
};
use crate::http::schema;
use crate::routes::AppState;

const COLLECTION: &str = "/api/v1/community/comments";

/// Comment on a post, or reply to one of its comments.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"body": "We use *legal capacity*."})))]
pub struct WriteComment {
    /// The text (markdown).
    #[schema(value_type = schema::Body)]
    pub body: String,
    /// The top-level comment of this post to reply to (replies go one level deep).
    pub parent_id: Option<Uuid>,
}

/// Edit a comment: its new text.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"body": "We use **legal capacity**."})))]
pub struct EditComment {
    /// The new text (markdown).
    #[schema(value_type = schema::Body)]
    pub body: String,
}

/// A comment as this reader may see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommentDto {
    /// Its id.
    pub id: Uuid,
    /// The post it is on.
    pub post_id: Uuid,
    /// The comment it replies to, if it is a reply.
    pub parent_id: Option<Uuid>,
    /// Who wrote it; absent when the comment was removed and this reader may not see it.
    pub author: Option<Uuid>,
    /// Its text (markdown, as written); absent when removed and this reader may not see it.
    pub body: Option<String>,
    /// Whether it was removed.
    pub removed: bool,
    /// Whether a moderator hid it over a report.
    pub hidden: bool,
    /// How many times its author edited it.
    pub edits: i32,
    /// The reactions to it.
    pub reactions: ReactionsDto,
    /// The stream version this reflects (use as `If-Match` for commands).
    pub version: i64,
    /// When it was written.
    pub written_at: DateTime<Utc>,
    /// When it was last edited, if ever.
    pub edited_at: Option<DateTime<Utc>>,
}

/// The reactions of a page, by comment, taken as each comment is shown.
type Reactions = HashMap<Uuid, ReactionSummary>;

impl CommentDto {
    fn of(view: CommentView, reactions: &mut Reactions) -> Self {
        Self {
            id: view.comment_id,
            post_id: view.post_id,
            parent_id: view.parent_id,
            author: view.author,
            body: view.body,
            removed: view.removed,
            hidden: view.hidden,
            edits: view.edits,
            reactions: reactions
                .remove(&view.comment_id)
                .unwrap_or_default()
                .into(),
            version: view.version,
            written_at: view.written_at,
            edited_at: view.edited_at,
        }
    }
}

/// A top-level comment and its replies.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThreadDto {
    /// The top-level comment (a removed one stays as a tombstone so its replies keep their
    /// place).
    pub comment: CommentDto,
    /// Its replies this reader may see, in the order written.
    pub replies: Vec<CommentDto>,
}

impl ThreadDto {
    fn of(thread: Thread, reactions: &mut Reactions) -> Self {
        Self {
            comment: CommentDto::of(thread.comment, reactions),
            replies: thread
                .replies
                .into_iter()
                .map(|reply| CommentDto::of(reply, reactions))
                .collect(),
        }
    }
}

/// A page of a post's threads.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThreadPage {
    /// The threads of this page, oldest first.
    pub items: Vec<ThreadDto>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

/// Paging parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListComments {
    /// Return threads after this top-level comment (the previous page's `next_cursor`).
    pub after: Option<Uuid>,
    /// Page size in threads: 1 to `queries.max_page_size` (100 unless configured otherwise);
    /// default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// Comment on a post that is neither locked nor removed, or reply to a top-level comment of it
/// (members).
#[utoipa::path(
    post, path = "/api/v1/community/posts/{id}/comments", tag = "community",
    params(("id" = Uuid, Path, description = "Post id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = WriteComment,
    responses(
        (status = 201, description = "Written", body = CommandAccepted),
        (status = 404, description = "No such post, or no such comment on it to reply to",
         body = Problem),
        (status = 409, description = "The post is locked or removed, the comment replied to \
                                      is a reply or removed", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
        (status = 429, description = "More comments than `community.comments_per_minute` \
                                      allows one member (`write_rate_limited`), or another \
                                      rate limit", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn write_comment(
    State(state): State<AppState>,
    IdPath(post): IdPath,
    caller: Caller,
    JsonBody(body): JsonBody<WriteComment>,
) -> Result<Response, ApiError> {
    let context = caller.may(CommunityAction::WriteComment, None, &body)?;
    let new = NewComment {
        post,
        parent: body.parent_id,
        author: caller.principal.account,
        body: one_field(
            "body",
            Body::parse_within(&body.body, state.settings.community.text_limits()),
        )?,
        at: Utc::now(),
    };
    // Counted once the request is readable (a refused one costs nothing), before the write.
    if let Some(limits) = &state.write_limits {
        limits.comment(&caller.principal)?;
    }
    let outcome = state
        .write
        .community
        .write_comment(&context, Uuid::now_v7(), new, Utc::now())
        .await?;
    Ok(created(COLLECTION, outcome, None))
}

/// Runs a command on an existing comment for a caller authorized on it (its author is the
/// action's subject).
async fn comment_command(
    state: &AppState,
    caller: &Caller,
    action: CommunityAction,
    (comment, expected): (Uuid, ExpectedVersion),
    body: &impl Serialize,
    command: impl FnOnce() -> Result<CommentCommand, ApiError>,
) -> Result<Response, ApiError> {
    let written = state
        .write
        .community
        .written_comment(&caller.principal.tenant, comment)
        .await?;
    let context = caller.may(action, Some(written.author), body)?;
    let outcome = state
        .write
        .community
        .comment(&context, comment, expected.0, command()?, Utc::now())
        .await?;
    Ok(changed(outcome))
}

/// Edit a comment (its author, within `community.edit_window_minutes` of writing it).
#[utoipa::path(
    post, path = "/api/v1/community/comments/{id}/edit", tag = "community",
    params(("id" = Uuid, Path, description = "Comment id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = EditComment,
    responses(
        (status = 200, description = "Edited", body = CommandAccepted),
        (status = 404, description = "No such comment", body = Problem),
        (status = 409, description = "Removed, unchanged, past the edit window, or a version \
                                      conflict", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn edit_comment(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
    JsonBody(body): JsonBody<EditComment>,
) -> Result<Response, ApiError> {
    let window = state.settings.community.edit_window();
    let command = || {
        Ok(CommentCommand::Edit {
            body: one_field(
                "body",
                Body::parse_within(&body.body, state.settings.community.text_limits()),
            )?,
            window,
            at: Utc::now(),
        })
    };
    let action = CommunityAction::EditComment;
    comment_command(&state, &caller, action, (id, expected), &body, command).await
}

/// Remove a comment (its author, or moderators): readers no longer see its text.
#[utoipa::path(
    post, path = "/api/v1/community/comments/{id}/remove", tag = "community",
    params(("id" = Uuid, Path, description = "Comment id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Removed", body = CommandAccepted),
        (status = 404, description = "No such comment", body = Problem),
        (status = 409, description = "Already removed, or a version conflict", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn remove_comment(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
) -> Result<Response, ApiError> {
    let by = caller.principal.id.clone();
    let command = || Ok(CommentCommand::Remove { by, at: Utc::now() });
    let action = CommunityAction::RemoveComment;
    comment_command(&state, &caller, action, (id, expected), &(), command).await
}

/// One comment. A removed comment is shown (marked) to its author and to moderators, admins
/// and auditors only.
#[utoipa::path(
    get, path = "/api/v1/community/comments/{id}", tag = "community",
    params(("id" = Uuid, Path, description = "Comment id"),
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command"),
           ("consistency_token" = Option<String>, Query, description = "Token from a command")),
    responses(
        (status = 200, description = "The comment", body = CommentDto),
        (status = 404, description = "No such comment (or removed, for this reader)",
         body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_comment(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    token: Consistency,
) -> Result<Response, ApiError> {
    let tenant = caller.may_read(CommunityAction::ReadCommunity, None)?;
    caught_up(&state, tenant, token).await?;
    let reader = reader(&caller);
    let comment = model::get_comment(&state.read_pool, tenant.as_str(), id, reader)
        .await?
        .ok_or_else(|| not_found("comment_not_found", "comment", id))?;
    let mut reactions = reactions_to(&state, tenant, &[id], reader).await?;
    let version = comment.version;
    Ok(with_etag(CommentDto::of(comment, &mut reactions), version))
}

/// A page of a post's threads: top-level comments in the order written, each with its replies.
#[utoipa::path(
    get, path = "/api/v1/community/posts/{id}/comments", tag = "community",
    params(("id" = Uuid, Path, description = "Post id"),
           ListComments,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "A page of threads", body = ThreadPage),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 404, description = "No such post (or removed, for this reader)",
         body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_comments(
    State(state): State<AppState>,
    IdPath(post): IdPath,
    caller: Caller,
    QueryParams(params): QueryParams<ListComments>,
    token: Consistency,
) -> Result<Json<ThreadPage>, ApiError> {
    let tenant = caller.may_read(CommunityAction::ReadCommunity, None)?;
    caught_up(&state, tenant, token).await?;
    threads_of(&state, tenant, post, reader(&caller), &params)
        .await
        .map(Json)
}

/// A page of post `post`'s threads as `reader` sees them, if `reader` may see the post.
///
/// # Errors
/// `400` for bad paging parameters, `404 post_not_found`, or a database failure.
pub(super) async fn threads_of(
    state: &AppState,
    tenant: &TenantId,
    post: Uuid,
    reader: Reader,
    params: &ListComments,
) -> Result<ThreadPage, ApiError> {
    let limit = page_limit(params.limit, state.settings.queries.max_page_size)?;
    visible_post(state, tenant, post, reader).await?;
    let (threads, next) = model::list_threads(
        &state.read_pool,
        tenant.as_str(),
        post,
        reader,
        params.after,
        i64::from(limit),
    )
    .await?;
    let ids: Vec<Uuid> = threads
        .iter()
        .flat_map(|thread| std::iter::once(&thread.comment).chain(&thread.replies))
        .map(|comment| comment.comment_id)
        .collect();
    let mut reactions = reactions_to(state, tenant, &ids, reader).await?;
    Ok(ThreadPage {
        items: threads
            .into_iter()
            .map(|thread| ThreadDto::of(thread, &mut reactions))
            .collect(),
        next_cursor: next,
    })
}
