//! New and corrected bars over Server-Sent Events: the handler authorizes, checks that the asset
//! exists and frames notices; reading JetStream and making notices is
//! `projections::prices::live`.

use std::convert::Infallible;

use async_nats::jetstream;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::sse::{Event, Sse};
use domain::policy::PriceAction;
use futures::Stream;
use projections::live::Bus;
use projections::prices::live::{self, Watch};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{caught_up, known_asset, query_interval};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{query_of, Caller, Consistency, IdPath};
use crate::http::schema;
use crate::http::schema::events::BarEvents;
use crate::http::streams::last_event_id;
use crate::routes::AppState;

/// Which bars a live stream follows.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FollowBars {
    /// Only bars of this interval; every interval when absent.
    #[param(value_type = Option<schema::prices::Interval>)]
    pub interval: Option<String>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// Server-Sent Events of an asset's bars as they are recorded (`event: bars`: a recording's new
/// bars, or its corrections with the values they replaced; one event of each per series). Each event's id is its
/// position in the event stream: a client that reconnects with `Last-Event-ID` receives
/// everything after it, in order, then live notices.
#[utoipa::path(
    get, path = "/api/v1/assets/{id}/bars/live", tag = "prices",
    params(("id" = Uuid, Path, description = "Asset id"), FollowBars,
        ("Last-Event-ID" = Option<u64>, Header,
            description = "Resume after this event id (sent by EventSource on reconnect)"),
        ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "An event stream. `event: bars` carries a BarsNotice; \
            `event: resync` comes first when events after `Last-Event-ID` are no longer \
            retained (re-read the asset's bars, then follow the stream)",
            content_type = "text/event-stream", body = BarEvents),
        (status = 400, description = "Invalid parameters, or Last-Event-ID is not an event id",
            body = Problem),
        (status = 404, description = "No such asset, or a token of no price command of the \
            tenant", body = Problem),
        (status = 503, description = "Projection behind the token, the event stream cannot be \
            read, or the server is shutting down", body = Problem),
        (status = 429, description = "The caller or the server holds as many live streams as \
            allowed (`too_many_streams`)", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn bars_live(
    State(state): State<AppState>,
    IdPath(asset): IdPath,
    caller: Caller,
    uri: Uri,
    token: Consistency,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let tenant = caller.may_read(PriceAction::ReadPrices, None)?;
    let params: FollowBars = query_of(&uri)?;
    let interval = params.interval.as_deref().map(query_interval).transpose()?;
    let resume_after = last_event_id(&headers)?;
    caught_up(&state, tenant, token).await?;
    known_asset(&state, tenant, asset).await?;
    let permit = state.live_streams.open(&caller.principal)?;
    let jetstream = jetstream::new(state.nats.clone());
    let bus = Bus {
        jetstream: &jetstream,
        stream: &state.settings.nats.stream,
        hub: &state.live_prices,
    };
    let watch = Watch { asset, interval };
    let feed = live::follow(
        bus,
        &state.settings.nats.subject_prefix,
        tenant.clone(),
        watch,
        resume_after,
    )
    .await
    .map_err(|error| ApiError::Unavailable(Box::new(error)))?;
    let reread = "events after Last-Event-ID are no longer retained; re-read the asset's bars";
    Ok(state.live_streams.events(permit, feed, "bars", reread))
}
