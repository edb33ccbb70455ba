//! Live job updates over Server-Sent Events: the handler authorizes and frames events; reading
//! JetStream and turning job events into updates is `projections::jobs::live`.

use async_nats::jetstream;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use domain::policy::JobAction;
use futures::Stream;
use projections::jobs as jobs_model;
use projections::jobs::live::{self, Watch};
use projections::live::Bus;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, QueryParams};
use crate::http::respond::not_found;
use crate::http::schema::events::JobEvents;
use crate::http::streams::last_event_id;
use crate::routes::AppState;

/// What live updates follow.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LiveParams {
    /// One job.
    pub job_id: Option<Uuid>,
    /// One owner's jobs (staff may omit both to follow the whole tenant).
    pub owner: Option<Uuid>,
}

/// Server-Sent Events of job changes (`event: job`), filtered by job or owner, read from the
/// event stream in JetStream. Each event's id is its position in that stream: a client that
/// reconnects with `Last-Event-ID` receives everything after it, in order, then live updates.
#[utoipa::path(
    get, path = "/api/v1/jobs/live", tag = "jobs",
    params(LiveParams,
        ("Last-Event-ID" = Option<u64>, Header,
            description = "Resume after this event id (sent by EventSource on reconnect)")),
    responses(
        (status = 200, description = "An event stream. `event: job` carries a JobUpdate; \
            `event: resync` comes first when events after `Last-Event-ID` are no longer retained \
            (re-read the jobs, then follow the stream)", content_type = "text/event-stream", body = JobEvents),
        (status = 400, description = "Last-Event-ID is not an event id", body = Problem),
        (status = 404, description = "No such job", body = Problem),
        (status = 429, description = "The caller or the server holds as many live streams as \
            allowed (`too_many_streams`)", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn live_jobs(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    QueryParams(params): QueryParams<LiveParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError> {
    let tenant = caller.principal.tenant.clone();
    let watch = match (params.job_id, params.owner) {
        (Some(job), _) => {
            let owner = jobs_model::owner(&state.read_pool, tenant.as_str(), job)
                .await?
                .ok_or_else(|| not_found("job_not_found", "job", job))?;
            caller.may_read(JobAction::WatchJobs, Some(owner))?;
            Watch::Job(job)
        }
        (None, owner) => {
            caller.may_read(JobAction::WatchJobs, owner)?;
            Watch::Jobs { owner }
        }
    };
    let resume_after = last_event_id(&headers)?;
    let permit = state.live_streams.open(&caller.principal)?;
    let jetstream = jetstream::new(state.nats.clone());
    let bus = Bus {
        jetstream: &jetstream,
        stream: &state.settings.nats.stream,
        hub: &state.live_jobs,
    };
    let subject_prefix = &state.settings.nats.subject_prefix;
    let feed = live::follow(bus, subject_prefix, tenant, watch, resume_after)
        .await
        .map_err(|error| ApiError::Unavailable(Box::new(error)))?;
    Ok(state.live_streams.events(
        permit,
        feed,
        "job",
        "events after Last-Event-ID are no longer retained; re-read the jobs",
    ))
}
