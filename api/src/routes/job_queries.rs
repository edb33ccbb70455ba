//! Job query routes: detail, lists, dashboard statistics, usage, and live updates. They read
//! the jobs projection (and, for live updates, the bus) only.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::DeliverPolicy};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::aggregate::Decider;
use domain::event::RecordedEvent;
use domain::identity::TenantId;
use domain::jobs::{JobEvent, JobKind, LanguageCode, TranslationJob};
use domain::policy::Action;
use futures::{Stream, StreamExt};
use projections::jobs::{self as jobs_model, JobCursor, JobFilter, JobsProjection};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::queries::consistent;
use super::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, Consistency, IdPath, QueryParams};

/// The job query routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/jobs", get(list_jobs))
        .route("/api/v1/jobs/stats", get(job_stats))
        .route("/api/v1/jobs/live", get(live_jobs))
        .route("/api/v1/jobs/{id}", get(get_job))
        .route("/api/v1/users/{id}/usage", get(user_usage))
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::NotFound {
        code: "job_not_found",
        detail: format!("no job with id {id}"),
    }
}

/// One job with its attempts and children.
#[utoipa::path(
    get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id"),
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command"),
           ("consistency_token" = Option<String>, Query, description = "Token from a command")),
    responses(
        (status = 200, description = "The job", body = serde_json::Value),
        (status = 404, description = "No such job", body = crate::error::Problem),
        (status = 503, description = "Projection behind the token", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_job(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    token: Consistency,
) -> Result<Response, ApiError> {
    let tenant = &caller.principal.tenant;
    consistent(
        &state,
        tenant,
        token,
        TranslationJob::TYPE,
        JobsProjection::NAME,
    )
    .await?;
    let detail = jobs_model::get(&state.pool, tenant.as_str(), id)
        .await?
        .ok_or_else(|| not_found(id))?;
    caller.may_read(Action::ReadJob, Some(detail.job.owner_id))?;
    let etag = HeaderValue::from_str(&format!("\"{}\"", detail.job.version)).ok();
    let mut response = Json(detail).into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// Filters and paging of a job list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListJobs {
    /// queued, claimed, running, retry_scheduled, succeeded, failed, cancelled, dead_lettered.
    pub status: Option<String>,
    /// translation, validation, post_edit, illustration.
    pub kind: Option<String>,
    /// Only this owner's jobs (staff); others always see only their own.
    pub owner: Option<Uuid>,
    /// Source language.
    pub source_language: Option<String>,
    /// Target language.
    pub target_language: Option<String>,
    /// Submitted at or after (RFC 3339).
    pub submitted_from: Option<DateTime<Utc>>,
    /// Submitted before (RFC 3339).
    pub submitted_to: Option<DateTime<Utc>>,
    /// The previous page's `next_cursor`.
    pub after: Option<String>,
    /// Page size, 1 to the configured maximum (default 20).
    pub limit: Option<u32>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// A page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    /// The jobs.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<jobs_model::JobView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

const STATUSES: [&str; 8] = [
    "queued",
    "claimed",
    "running",
    "retry_scheduled",
    "succeeded",
    "failed",
    "cancelled",
    "dead_lettered",
];

/// A page of jobs with filters. Staff see the tenant's jobs; everyone else sees their own.
#[utoipa::path(
    get, path = "/api/v1/jobs", tag = "jobs",
    params(ListJobs,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "A page of jobs", body = JobPage),
        (status = 400, description = "Invalid parameters", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<ListJobs>,
    token: Consistency,
) -> Result<Json<JobPage>, ApiError> {
    let owner = match params.owner {
        Some(owner) => Some(owner),
        // Without the right to list everyone's jobs, a list is of one's own.
        None if caller.may_read(Action::ListJobs, None).is_err() => Some(caller.principal.account),
        None => None,
    };
    let tenant = caller.may_read(Action::ListJobs, owner)?;
    let bad = |code: &'static str, detail: String| ApiError::bad_request(code, detail);
    if let Some(status) = params.status.as_deref().filter(|s| !STATUSES.contains(s)) {
        return Err(bad(
            "invalid_status",
            format!("unknown status {status:?}; one of {}", STATUSES.join(", ")),
        ));
    }
    if let Some(kind) = params
        .kind
        .as_deref()
        .filter(|kind| !JobKind::ALL.iter().any(|k| k.as_str() == *kind))
    {
        return Err(bad("invalid_kind", format!("unknown job kind {kind:?}")));
    }
    let language = |raw: &Option<String>, name: &str| {
        raw.as_deref()
            .map(|code| {
                LanguageCode::parse(code)
                    .map(|code| code.to_string())
                    .map_err(|_| {
                        bad(
                            "invalid_language",
                            format!("{name}: {code:?} is not a language code"),
                        )
                    })
            })
            .transpose()
    };
    let after = params
        .after
        .as_deref()
        .map(|raw| {
            raw.parse::<JobCursor>().map_err(|()| {
                bad(
                    "invalid_cursor",
                    "after: not a cursor from this API".to_owned(),
                )
            })
        })
        .transpose()?;
    let max = state.settings.queries.max_page_size;
    let limit = params.limit.unwrap_or(20.min(max));
    if !(1..=max).contains(&limit) {
        return Err(bad(
            "invalid_limit",
            format!("limit must be between 1 and {max}"),
        ));
    }
    let filter = JobFilter {
        status: params.status.clone(),
        kind: params.kind.clone(),
        owner,
        source_language: language(&params.source_language, "source_language")?,
        target_language: language(&params.target_language, "target_language")?,
        submitted_from: params.submitted_from,
        submitted_to: params.submitted_to,
    };
    consistent(
        &state,
        tenant,
        token,
        TranslationJob::TYPE,
        JobsProjection::NAME,
    )
    .await?;
    let (items, next) = jobs_model::list(
        &state.pool,
        tenant.as_str(),
        &filter,
        after,
        i64::from(limit),
    )
    .await?;
    Ok(Json(JobPage {
        items,
        next_cursor: next.map(|cursor| cursor.to_string()),
    }))
}

/// The moment statistics windows end at.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatsParams {
    /// End of the time windows (RFC 3339); now when absent.
    pub at: Option<DateTime<Utc>>,
}

/// Dashboard statistics: jobs by status, throughput per minute (last hour) and per hour (last
/// day), p50/p95 duration per kind, failure and retry rates.
#[utoipa::path(
    get, path = "/api/v1/jobs/stats", tag = "jobs",
    params(StatsParams),
    responses((status = 200, description = "Statistics", body = serde_json::Value)),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn job_stats(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<StatsParams>,
) -> Result<Response, ApiError> {
    let tenant = caller.may_read(Action::ReadJobStats, None)?;
    let stats = jobs_model::stats(
        &state.pool,
        tenant.as_str(),
        params.at.unwrap_or_else(Utc::now),
    )
    .await?;
    Ok(Json(stats).into_response())
}

/// A user's usage: jobs submitted and succeeded, characters processed and translated.
#[utoipa::path(
    get, path = "/api/v1/users/{id}/usage", tag = "jobs",
    params(("id" = Uuid, Path, description = "User (or API key) id")),
    responses(
        (status = 200, description = "Usage", body = serde_json::Value),
        (status = 404, description = "The account never submitted a job", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn user_usage(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
) -> Result<Response, ApiError> {
    let tenant = caller.may_read(Action::ReadUsage, Some(id))?;
    let usage = jobs_model::usage(&state.pool, tenant.as_str(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            code: "usage_not_found",
            detail: format!("account {id} has not submitted any job"),
        })?;
    Ok(Json(usage).into_response())
}

/// What live updates follow.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LiveParams {
    /// One job.
    pub job_id: Option<Uuid>,
    /// One owner's jobs (staff may omit both to follow the whole tenant).
    pub owner: Option<Uuid>,
}

/// One live update.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobUpdate {
    /// The job.
    pub job_id: Uuid,
    /// Its owner.
    pub owner: Uuid,
    /// The stored event type, e.g. `JobClaimed`.
    pub event_type: String,
    /// The job's version after the event.
    pub version: i64,
    /// The status the event moved the job to, when it changes status.
    pub status: Option<&'static str>,
    /// Units done and total, for progress reports.
    pub progress: Option<(u64, u64)>,
    /// When it happened.
    pub at: DateTime<Utc>,
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
            (re-read the jobs, then follow the stream)", content_type = "text/event-stream", body = JobUpdate),
        (status = 400, description = "Last-Event-ID is not an event id", body = crate::error::Problem),
        (status = 404, description = "No such job", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn live_jobs(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    QueryParams(params): QueryParams<LiveParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let resume_after = headers
        .get("last-event-id")
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|id| id.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_last_event_id",
                        "Last-Event-ID must be the id of an event this stream sent (an integer)",
                    )
                })
        })
        .transpose()?;
    let tenant = caller.principal.tenant.clone();
    let prefix = &state.settings.nats.subject_prefix;
    let (subject, owner) = match (params.job_id, params.owner) {
        (Some(job), _) => {
            let owner = jobs_model::owner(&state.pool, tenant.as_str(), job)
                .await?
                .ok_or_else(|| not_found(job))?;
            caller.may_read(Action::WatchJobs, Some(owner))?;
            (
                format!("{prefix}.{tenant}.{}.{tenant}:{job}", TranslationJob::TYPE),
                None,
            )
        }
        (None, owner) => {
            caller.may_read(Action::WatchJobs, owner)?;
            (
                format!("{prefix}.{tenant}.{}.*", TranslationJob::TYPE),
                owner,
            )
        }
    };
    let unavailable =
        |error: Box<dyn std::error::Error + Send + Sync>| ApiError::Unavailable(error);
    let stream = jetstream::new(state.nats.clone())
        .get_stream(&state.settings.nats.stream)
        .await
        .map_err(|error| unavailable(Box::new(error)))?;
    // Looking the stream up fetched its state: no second request for it.
    let first_retained = stream.cached_info().state.first_sequence;
    // An ordered consumer: ephemeral, no acks, and it recreates itself past any gap it sees.
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: subject,
            deliver_policy: match resume_after {
                Some(last) => DeliverPolicy::ByStartSequence {
                    start_sequence: last + 1,
                },
                None => DeliverPolicy::New,
            },
            ..Default::default()
        })
        .await
        .map_err(|error| unavailable(Box::new(error)))?;
    let messages = consumer
        .messages()
        .await
        .map_err(|error| unavailable(Box::new(error)))?;
    let resync = resume_after
        .filter(|last| last + 1 < first_retained)
        .map(|_| {
            Ok(Event::default()
                .event("resync")
                .data("events after Last-Event-ID are no longer retained; re-read the jobs"))
        });
    let pool = state.pool.clone();
    let mut owners: HashMap<Uuid, Uuid> = HashMap::new();
    let updates = messages
        .filter_map(move |message| {
            // A consumer error ends nothing: the ordered consumer recovers by itself.
            let decoded = message.ok().and_then(|message| {
                let position = message.info().ok()?.stream_sequence;
                let event = serde_json::from_slice::<RecordedEvent>(&message.payload).ok()?;
                Some((position, event))
            });
            let known = decoded
                .as_ref()
                .and_then(|(_, event)| {
                    event
                        .aggregate_id
                        .parse::<domain::identity::StreamId>()
                        .ok()
                })
                .and_then(|stream| owners.get(&stream.id).copied());
            let update =
                decoded.and_then(|(position, event)| Some((position, update_of(&event, known)?)));
            if let Some((_, update)) = &update {
                owners.insert(update.job_id, update.owner);
            }
            let (pool, tenant) = (pool.clone(), tenant.clone());
            async move {
                let (position, mut update) = update?;
                if update.owner.is_nil() {
                    update.owner = owner_of(&pool, &tenant, update.job_id).await?;
                }
                Some((position, update))
            }
        })
        .filter(move |(_, update)| {
            std::future::ready(owner.is_none_or(|owner| owner == update.owner))
        })
        .map(|(position, update)| {
            Ok(Event::default()
                .event("job")
                .id(position.to_string())
                .json_data(&update)
                .unwrap_or_default())
        });
    Ok(Sse::new(futures::stream::iter(resync).chain(updates))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

async fn owner_of(pool: &sqlx::PgPool, tenant: &TenantId, job: Uuid) -> Option<Uuid> {
    jobs_model::owner(pool, tenant.as_str(), job)
        .await
        .ok()
        .flatten()
}

/// The update an event makes, with the owner when known (nil when it must be looked up).
fn update_of(event: &RecordedEvent, known_owner: Option<Uuid>) -> Option<JobUpdate> {
    let stream: domain::identity::StreamId = event.aggregate_id.parse().ok()?;
    let payload: JobEvent = serde_json::from_value(event.payload.clone()).ok()?;
    let mut owner = known_owner.unwrap_or_default();
    let (status, progress) = match &payload {
        JobEvent::JobSubmitted {
            owner: submitter, ..
        } => {
            owner = *submitter;
            (Some("queued"), None)
        }
        JobEvent::JobQueued { .. } => (Some("queued"), None),
        JobEvent::JobClaimed { .. } => (Some("claimed"), None),
        JobEvent::ProgressReported { progress, .. } => {
            (Some("running"), Some((progress.done, progress.total)))
        }
        JobEvent::JobSucceeded { .. } => (Some("succeeded"), None),
        JobEvent::JobFailed { .. } => (Some("failed"), None),
        JobEvent::RetryScheduled { .. } => (Some("retry_scheduled"), None),
        JobEvent::JobCancelled { .. } => (Some("cancelled"), None),
        JobEvent::JobDeadLettered { .. } => (Some("dead_lettered"), None),
        JobEvent::LeaseExtended { .. }
        | JobEvent::LeaseExpired { .. }
        | JobEvent::JobResubmitted { .. } => (None, None),
    };
    Some(JobUpdate {
        job_id: stream.id,
        owner,
        event_type: event.event_type.clone(),
        version: event.sequence,
        status,
        progress,
        at: payload.at(),
    })
}
