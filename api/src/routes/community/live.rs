//! New writing over Server-Sent Events: the handlers authorize, check that what is followed
//! exists for the reader, and frame notices; reading JetStream and making notices is
//! `projections::community::live`.

use std::convert::Infallible;

use async_nats::jetstream;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use domain::policy::CommunityAction;
use futures::Stream;
use projections::community::live::{self, Watch};
use projections::community::{self as model};
use projections::live::Bus;

use super::caught_up;
use super::reading::{reader, visible_post};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, Consistency, IdPath};
use crate::http::respond::not_found;
use crate::http::schema::events::WritingEvents;
use crate::http::streams::last_event_id;
use crate::routes::AppState;

/// Server-Sent Events of the posts written in a category and the comments written on them
/// (`event: writing`, a notice without the text: read it through the post and comment routes,
/// which show what this reader may see). Each event's id is its position in the event stream:
/// a client that reconnects with `Last-Event-ID` receives everything after it, in order, then
/// live notices.
#[utoipa::path(
    get, path = "/api/v1/community/categories/{id}/live", tag = "community",
    params(("id" = Uuid, Path, description = "Category id"),
        ("Last-Event-ID" = Option<u64>, Header,
            description = "Resume after this event id (sent by EventSource on reconnect)"),
        ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command"),
        ("consistency_token" = Option<String>, Query, description = "Token from a command")),
    responses(
        (status = 200, description = "An event stream. `event: writing` carries a \
            WritingNotice; `event: resync` comes first when events after `Last-Event-ID` are no \
            longer retained (re-read the category's posts, then follow the stream)",
            content_type = "text/event-stream", body = WritingEvents),
        (status = 400, description = "Last-Event-ID is not an event id", body = Problem),
        (status = 404, description = "No such category", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
        (status = 429, description = "The caller or the server holds as many live streams as \
            allowed (`too_many_streams`)", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn category_live(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    token: Consistency,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let tenant = caller.may_read(CommunityAction::ReadCommunity, None)?;
    let resume_after = last_event_id(&headers)?;
    caught_up(&state, tenant, token).await?;
    model::get_category(&state.read_pool, tenant.as_str(), id)
        .await?
        .ok_or_else(|| not_found("category_not_found", "category", id))?;
    let reread = "events after Last-Event-ID are no longer retained; re-read the category's posts";
    serve(&state, &caller, Watch::Category(id), resume_after, reread).await
}

/// Server-Sent Events of the comments and replies written on a post (`event: writing`, a
/// notice without the text: read the comments through the comment routes, which show what this
/// reader may see). Resumable with `Last-Event-ID` like every live stream.
#[utoipa::path(
    get, path = "/api/v1/community/posts/{id}/live", tag = "community",
    params(("id" = Uuid, Path, description = "Post id"),
        ("Last-Event-ID" = Option<u64>, Header,
            description = "Resume after this event id (sent by EventSource on reconnect)"),
        ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command"),
        ("consistency_token" = Option<String>, Query, description = "Token from a command")),
    responses(
        (status = 200, description = "An event stream. `event: writing` carries a \
            WritingNotice; `event: resync` comes first when events after `Last-Event-ID` are no \
            longer retained (re-read the post's comments, then follow the stream)",
            content_type = "text/event-stream", body = WritingEvents),
        (status = 400, description = "Last-Event-ID is not an event id", body = Problem),
        (status = 404, description = "No such post (or removed, for this reader)", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
        (status = 429, description = "The caller or the server holds as many live streams as \
            allowed (`too_many_streams`)", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn post_live(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    token: Consistency,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let tenant = caller.may_read(CommunityAction::ReadCommunity, None)?;
    let resume_after = last_event_id(&headers)?;
    caught_up(&state, tenant, token).await?;
    visible_post(&state, tenant, id, reader(&caller)).await?;
    let reread = "events after Last-Event-ID are no longer retained; re-read the post's comments";
    serve(&state, &caller, Watch::Post(id), resume_after, reread).await
}

/// The caller's live stream of `watch`, within its place among the open streams.
async fn serve(
    state: &AppState,
    caller: &Caller,
    watch: Watch,
    resume_after: Option<u64>,
    reread: &'static str,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let permit = state.live_streams.open(&caller.principal)?;
    let jetstream = jetstream::new(state.nats.clone());
    let bus = Bus {
        jetstream: &jetstream,
        stream: &state.settings.nats.stream,
        hub: &state.live_community,
    };
    let tenant = caller.principal.tenant.clone();
    let subject_prefix = &state.settings.nats.subject_prefix;
    let feed = live::follow(bus, subject_prefix, tenant, watch, resume_after)
        .await
        .map_err(|error| ApiError::Unavailable(Box::new(error)))?;
    // What a resumed client is replayed, it is shown as it may see it now.
    let pool = state.read_pool.clone();
    let feed = live::visible_only(
        feed,
        pool,
        reader(caller),
        state.settings.consistency_wait(),
    );
    Ok(state.live_streams.events(permit, feed, "writing", reread))
}
