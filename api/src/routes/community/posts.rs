//! Post routes that write: members write, authors edit and remove their own, moderators
//! remove, lock and pin.

use axum::extract::State;
use axum::response::Response;
use chrono::Utc;
use domain::community::{Body, PostCommand, TextLimits, Title};
use domain::policy::CommunityAction;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, ExpectedVersion, IdPath, JsonBody};
use crate::http::respond::{changed, created, field, CommandAccepted};
use crate::http::schema;
use crate::routes::AppState;

const COLLECTION: &str = "/api/v1/community/posts";

/// Write a post.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "category_id": "0192f0c4-0000-7000-8000-000000000001",
    "title": "Glossary for legal German",
    "body": "Which term do you use for *Rechtsfähigkeit*?"
})))]
pub struct WritePost {
    /// The category to write in; it must exist and not be archived.
    pub category_id: Uuid,
    /// Its title.
    #[schema(value_type = schema::Title)]
    pub title: String,
    /// Its text (markdown).
    #[schema(value_type = schema::Body)]
    pub body: String,
}

/// Edit a post: its new title and text.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "title": "Glossary: legal German",
    "body": "Which term do you use for **Rechtsfähigkeit**?"
})))]
pub struct EditPost {
    /// The new title.
    #[schema(value_type = schema::Title)]
    pub title: String,
    /// The new text (markdown).
    #[schema(value_type = schema::Body)]
    pub body: String,
}

/// The title and body of a request, each refusal named by its field.
fn text(limits: TextLimits, title: &str, body: &str) -> Result<(Title, Body), ApiError> {
    let mut errors = Vec::new();
    let title = field("title", Title::parse_within(title, limits), &mut errors);
    let body = field("body", Body::parse_within(body, limits), &mut errors);
    match (title, body) {
        (Some(title), Some(body)) => Ok((title, body)),
        _ => Err(ApiError::validation(errors)),
    }
}

/// Write a post in a category (members).
#[utoipa::path(
    post, path = "/api/v1/community/posts", tag = "community",
    request_body = WritePost,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 201, description = "Written", body = CommandAccepted),
        (status = 404, description = "No such category", body = Problem),
        (status = 409, description = "The category is archived", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
        (status = 429, description = "More posts than `community.posts_per_minute` allows \
                                      one member (`write_rate_limited`), or another rate limit",
         body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn write_post(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<WritePost>,
) -> Result<Response, ApiError> {
    let context = caller.may(CommunityAction::WritePost, None, &body)?;
    let (title, text) = text(
        state.settings.community.text_limits(),
        &body.title,
        &body.body,
    )?;
    if let Some(limits) = &state.write_limits {
        limits.post(&caller.principal)?;
    }
    let command = PostCommand::Write {
        category: body.category_id,
        author: caller.principal.account,
        title,
        body: text,
        at: Utc::now(),
    };
    let outcome = state
        .write
        .community
        .write_post(&context, Uuid::now_v7(), command, Utc::now())
        .await?;
    Ok(created(COLLECTION, outcome, None))
}

/// Runs a command on an existing post for a caller authorized on it (its author is the
/// action's subject).
async fn post_command(
    state: &AppState,
    caller: &Caller,
    action: CommunityAction,
    (post, expected): (Uuid, ExpectedVersion),
    body: &impl Serialize,
    command: impl FnOnce() -> Result<PostCommand, ApiError>,
) -> Result<Response, ApiError> {
    let written = state
        .write
        .community
        .written_post(&caller.principal.tenant, post)
        .await?;
    let context = caller.may(action, Some(written.author), body)?;
    let outcome = state
        .write
        .community
        .post(&context, post, expected.0, command()?, Utc::now())
        .await?;
    Ok(changed(outcome))
}

/// Edit a post (its author, within `community.edit_window_minutes` of writing it). Earlier
/// texts stay in the post's history.
#[utoipa::path(
    post, path = "/api/v1/community/posts/{id}/edit", tag = "community",
    params(("id" = Uuid, Path, description = "Post id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = EditPost,
    responses(
        (status = 200, description = "Edited", body = CommandAccepted),
        (status = 404, description = "No such post", body = Problem),
        (status = 409, description = "Removed, unchanged, past the edit window, or a version \
                                      conflict", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn edit_post(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
    JsonBody(body): JsonBody<EditPost>,
) -> Result<Response, ApiError> {
    let window = state.settings.community.edit_window();
    let command = || {
        let (title, text) = text(
            state.settings.community.text_limits(),
            &body.title,
            &body.body,
        )?;
        Ok(PostCommand::Edit {
            title,
            body: text,
            window,
            at: Utc::now(),
        })
    };
    let action = CommunityAction::EditPost;
    post_command(&state, &caller, action, (id, expected), &body, command).await
}

/// Remove a post (its author, or moderators): readers no longer see it; its history stays.
#[utoipa::path(
    post, path = "/api/v1/community/posts/{id}/remove", tag = "community",
    params(("id" = Uuid, Path, description = "Post id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Removed", body = CommandAccepted),
        (status = 404, description = "No such post", body = Problem),
        (status = 409, description = "Already removed, or a version conflict", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn remove_post(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
) -> Result<Response, ApiError> {
    let by = caller.principal.id.clone();
    let command = || Ok(PostCommand::Remove { by, at: Utc::now() });
    let action = CommunityAction::RemovePost;
    post_command(&state, &caller, action, (id, expected), &(), command).await
}

/// Sets a moderation flag of a post.
async fn flag(
    state: &AppState,
    caller: &Caller,
    target: (Uuid, ExpectedVersion),
    command: PostCommand,
) -> Result<Response, ApiError> {
    let action = match command {
        PostCommand::SetLocked { .. } => CommunityAction::LockPost,
        _ => CommunityAction::PinPost,
    };
    post_command(state, caller, action, target, &(), || Ok(command)).await
}

/// Lock a post (moderators): it takes no new comments.
#[utoipa::path(
    post, path = "/api/v1/community/posts/{id}/lock", tag = "community",
    params(("id" = Uuid, Path, description = "Post id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Locked", body = CommandAccepted),
        (status = 404, description = "No such post", body = Problem),
        (status = 409, description = "Already locked, removed, or a version conflict",
         body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn lock_post(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
) -> Result<Response, ApiError> {
    let command = PostCommand::SetLocked {
        locked: true,
        at: Utc::now(),
    };
    flag(&state, &caller, (id, expected), command).await
}

/// Unlock a post (moderators).
#[utoipa::path(
    post, path = "/api/v1/community/posts/{id}/unlock", tag = "community",
    params(("id" = Uuid, Path, description = "Post id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Unlocked", body = CommandAccepted),
        (status = 404, description = "No such post", body = Problem),
        (status = 409, description = "Not locked, removed, or a version conflict", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn unlock_post(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
) -> Result<Response, ApiError> {
    let command = PostCommand::SetLocked {
        locked: false,
        at: Utc::now(),
    };
    flag(&state, &caller, (id, expected), command).await
}

/// Pin a post (moderators): it is listed before the others of its category.
#[utoipa::path(
    post, path = "/api/v1/community/posts/{id}/pin", tag = "community",
    params(("id" = Uuid, Path, description = "Post id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Pinned", body = CommandAccepted),
        (status = 404, description = "No such post", body = Problem),
        (status = 409, description = "Already pinned, removed, or a version conflict",
         body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn pin_post(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
) -> Result<Response, ApiError> {
    let command = PostCommand::SetPinned {
        pinned: true,
        at: Utc::now(),
    };
    flag(&state, &caller, (id, expected), command).await
}

/// Unpin a post (moderators).
#[utoipa::path(
    post, path = "/api/v1/community/posts/{id}/unpin", tag = "community",
    params(("id" = Uuid, Path, description = "Post id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Unpinned", body = CommandAccepted),
        (status = 404, description = "No such post", body = Problem),
        (status = 409, description = "Not pinned, removed, or a version conflict", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn unpin_post(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
) -> Result<Response, ApiError> {
    let command = PostCommand::SetPinned {
        pinned: false,
        at: Utc::now(),
    };
    flag(&state, &caller, (id, expected), command).await
}
