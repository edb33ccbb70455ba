//! Reaction routes: a member adds or withdraws their own reaction to a post or comment. Either
//! way the request says the state it wants, so repeating it changes nothing.

use axum::extract::State;
use axum::response::Response;
use chrono::Utc;
use domain::community::{ReactionCommand, ReactionKind, Target};
use domain::policy::CommunityAction;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, IdPath, JsonBody};
use crate::http::respond::{changed, CommandAccepted};
use crate::http::schema;
use crate::routes::AppState;

/// The caller's reaction of one kind: there (`present: true`) or not.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"kind": "insightful", "present": true})))]
pub struct SetReaction {
    /// Which reaction.
    #[schema(value_type = schema::ReactionKind)]
    pub kind: ReactionKind,
    /// Whether the caller's reaction of this kind should be there.
    pub present: bool,
}

/// Sets the caller's reaction to `target`.
async fn react(
    state: &AppState,
    caller: &Caller,
    target: Target,
    body: &SetReaction,
) -> Result<Response, ApiError> {
    let context = caller.may(CommunityAction::React, None, body)?;
    let command = ReactionCommand {
        target,
        member: caller.principal.account,
        kind: body.kind,
        present: body.present,
        at: Utc::now(),
    };
    let outcome = state
        .write
        .community
        .react(&context, command, Utc::now())
        .await?;
    Ok(changed(outcome))
}

/// Add or withdraw the caller's reaction to a post (members). At most one of each kind per
/// member; asking for the state it is already in changes nothing.
#[utoipa::path(
    put, path = "/api/v1/community/posts/{id}/reactions", tag = "community",
    params(("id" = Uuid, Path, description = "Post id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = SetReaction,
    responses(
        (status = 200, description = "The reaction is as asked", body = CommandAccepted),
        (status = 404, description = "No such post", body = Problem),
        (status = 409, description = "The post was removed, or a concurrent change to the \
                                      same reaction", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn react_to_post(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    JsonBody(body): JsonBody<SetReaction>,
) -> Result<Response, ApiError> {
    react(&state, &caller, Target::Post(id), &body).await
}

/// Add or withdraw the caller's reaction to a comment (members). At most one of each kind per
/// member; asking for the state it is already in changes nothing.
#[utoipa::path(
    put, path = "/api/v1/community/comments/{id}/reactions", tag = "community",
    params(("id" = Uuid, Path, description = "Comment id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = SetReaction,
    responses(
        (status = 200, description = "The reaction is as asked", body = CommandAccepted),
        (status = 404, description = "No such comment", body = Problem),
        (status = 409, description = "The comment was removed, or a concurrent change to the \
                                      same reaction", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn react_to_comment(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    JsonBody(body): JsonBody<SetReaction>,
) -> Result<Response, ApiError> {
    react(&state, &caller, Target::Comment(id), &body).await
}
