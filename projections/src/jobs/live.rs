//! Live job updates, read from the bus as they happen: what `GET /api/v1/jobs/live` streams.
//!
//! The hard idea is resumption. Each update carries its message's sequence in the JetStream
//! stream as its id, so a client that reconnects after update `n` asks for everything after `n`
//! and receives it in order, then live updates, with nothing skipped and nothing repeated. Live
//! updates come from the process's one subscription to job events ([`LiveHub`]); what a
//! resuming client missed comes from a short-lived consumer of its own, narrowed by subject to
//! one job or one tenant's jobs ([`crate::live::resume`]). What the feed cannot do is invent
//! events JetStream no longer retains: when the messages after `n` have expired, it says so
//! ([`LiveFeed::resync`]) instead of silently continuing from a later point.
//!
//! An update names the job's owner, so a caller following one owner's jobs sees only theirs.
//! Only a job's first event carries its owner; the feed remembers the owners it has seen and
//! looks the others up in the jobs read model.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_nats::jetstream;
use chrono::{DateTime, Utc};
use domain::aggregate::Decider;
use domain::event::RecordedEvent;
use domain::identity::{StreamId, TenantId};
use domain::jobs::{JobEvent, JobStatus, TranslationJob};
use futures::stream::BoxStream;
use futures::StreamExt;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::queries::owner;
use crate::engine::BoxError;
use crate::live::{self as hub, Delivered, LiveHub};

/// What a live feed follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// One job.
    Job(Uuid),
    /// The tenant's jobs, or only one owner's.
    Jobs {
        /// Only this owner's jobs, when given.
        owner: Option<Uuid>,
    },
}

/// Where the feed reads: the event stream in JetStream and its subject scheme.
#[derive(Debug, Clone, Copy)]
pub struct Bus<'a> {
    /// The JetStream context.
    pub jetstream: &'a jetstream::Context,
    /// The stream the relay publishes to.
    pub stream: &'a str,
    /// Its subject prefix (subjects are `{prefix}.{tenant}.{aggregate_type}.{aggregate_id}`).
    pub subject_prefix: &'a str,
    /// The process's subscription to job events (see [`hub_subject`]).
    pub hub: &'a LiveHub,
}

/// What the process's [`LiveHub`] for job updates follows: every tenant's job events.
pub fn hub_subject(subject_prefix: &str) -> String {
    format!("{subject_prefix}.*.{}.*", TranslationJob::TYPE)
}

/// One live update.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Units done and total, `[done, total]`, for progress reports.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<Vec<u64>>, min_items = 2, max_items = 2)
    )]
    pub progress: Option<(u64, u64)>,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// A live feed: updates with their ids (stream sequences), in order, endlessly.
pub struct LiveFeed {
    /// Whether updates after the requested id are no longer retained: the caller should re-read
    /// the jobs, then follow the updates.
    pub resync: bool,
    /// `(id, update)` pairs.
    pub updates: BoxStream<'static, (u64, JobUpdate)>,
}

impl std::fmt::Debug for LiveFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveFeed")
            .field("resync", &self.resync)
            .finish_non_exhaustive()
    }
}

/// The bus could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the event bus is unavailable")]
pub struct BusUnavailable(#[source] pub BoxError);

/// Follows `watch` within `tenant`, after update `resume_after` (or from now). The caller has
/// authorized the watch; a job's existence is the caller's to check too.
///
/// # Errors
/// [`BusUnavailable`] when the stream cannot be read.
pub async fn follow(
    bus: Bus<'_>,
    pool: PgPool,
    tenant: TenantId,
    watch: Watch,
    resume_after: Option<u64>,
) -> Result<LiveFeed, BusUnavailable> {
    let unavailable = |error: BoxError| BusUnavailable(error);
    let (prefix, kind) = (bus.subject_prefix, TranslationJob::TYPE);
    let (subject, owner_filter) = match watch {
        Watch::Job(job) => (format!("{prefix}.{tenant}.{kind}.{tenant}:{job}"), None),
        Watch::Jobs { owner } => (format!("{prefix}.{tenant}.{kind}.*"), owner),
    };
    // Subscribe first: every message stored from here on is in the subscription, so the
    // backlog read next and the subscription leave no gap between them.
    let live = bus
        .hub
        .subscribe()
        .await
        .map_err(unavailable)?;
    let stream = bus
        .jetstream
        .get_stream(bus.stream)
        .await
        .map_err(|error| unavailable(error.into()))?;
    // Looking the stream up fetched its state: no second request for it.
    let state = &stream.cached_info().state;
    let (first_retained, last_stored) = (state.first_sequence, state.last_sequence);
    let resync = resume_after.is_some_and(|last| last + 1 < first_retained);
    let backlog = match resume_after {
        Some(after) if after < last_stored => {
            hub::resume(bus.jetstream, bus.stream, subject, after)
                .await
                .map_err(unavailable)?
        }
        _ => futures::stream::empty().boxed(),
    };
    // A backlog that cannot be read to its end ends the feed (the client resumes again):
    // going on with live updates would skip the rest.
    let failed = Arc::new(AtomicBool::new(false));
    let backlog = {
        let failed = failed.clone();
        backlog.scan((), move |(), item| {
            if item.is_err() {
                failed.store(true, Ordering::SeqCst);
            }
            std::future::ready(item.ok().map(Arc::new))
        })
    };
    let live = live.take_while(move |_| std::future::ready(!failed.load(Ordering::SeqCst)));
    let mut sent = resume_after.unwrap_or(0);
    let mut owners: HashMap<Uuid, Uuid> = HashMap::new();
    let updates = backlog
        .chain(live)
        .filter_map(move |delivered: Arc<Delivered>| {
            // Each id once, in order: the subscription repeats what the backlog already had.
            let followed = delivered.sequence > sent && watches(&tenant, watch, &delivered.event);
            if followed {
                sent = delivered.sequence;
            }
            let decoded = followed.then(|| (delivered.sequence, &delivered.event));
            let known = decoded
                .and_then(|(_, event)| event.aggregate_id.parse::<StreamId>().ok())
                .and_then(|stream| owners.get(&stream.id).copied());
            let update =
                decoded.and_then(|(position, event)| Some((position, update_of(event, known)?)));
            if let Some((_, update)) = &update {
                if !update.owner.is_nil() {
                    owners.insert(update.job_id, update.owner);
                }
            }
            let (pool, tenant) = (pool.clone(), tenant.clone());
            async move {
                let (position, mut update) = update?;
                if update.owner.is_nil() {
                    update.owner = owner(&pool, tenant.as_str(), update.job_id)
                        .await
                        .ok()
                        .flatten()?;
                }
                Some((position, update))
            }
        })
        .filter(move |(_, update)| {
            std::future::ready(owner_filter.is_none_or(|owner| owner == update.owner))
        });
    Ok(LiveFeed {
        resync,
        updates: updates.boxed(),
    })
}

/// Whether `event` is one `watch` follows in `tenant`.
fn watches(tenant: &TenantId, watch: Watch, event: &RecordedEvent) -> bool {
    let Ok(stream) = event.aggregate_id.parse::<StreamId>() else {
        return false;
    };
    event.aggregate_type == TranslationJob::TYPE
        && stream.tenant == *tenant
        && match watch {
            Watch::Job(job) => stream.id == job,
            Watch::Jobs { .. } => true,
        }
}

/// The update an event makes, with the owner when known (nil when it must be looked up).
pub fn update_of(event: &RecordedEvent, known_owner: Option<Uuid>) -> Option<JobUpdate> {
    let stream: StreamId = event.aggregate_id.parse().ok()?;
    let payload: JobEvent = serde_json::from_value(event.payload.clone()).ok()?;
    let mut owner = known_owner.unwrap_or_default();
    let (status, progress) = match &payload {
        JobEvent::JobSubmitted {
            owner: submitter, ..
        } => {
            owner = *submitter;
            (Some(JobStatus::Queued), None)
        }
        JobEvent::JobQueued { .. } => (Some(JobStatus::Queued), None),
        JobEvent::JobClaimed { .. } => (Some(JobStatus::Claimed), None),
        JobEvent::ProgressReported { progress, .. } => (
            Some(JobStatus::Running),
            Some((progress.done(), progress.total())),
        ),
        JobEvent::JobSucceeded { .. } => (Some(JobStatus::Succeeded), None),
        JobEvent::JobFailed { .. } => (Some(JobStatus::Failed), None),
        JobEvent::RetryScheduled { due_at, .. } => {
            (Some(JobStatus::RetryScheduled { due_at: *due_at }), None)
        }
        JobEvent::JobCancelled { .. } => (Some(JobStatus::Cancelled), None),
        JobEvent::JobDeadLettered { .. } => (Some(JobStatus::DeadLettered), None),
        JobEvent::LeaseExtended { .. }
        | JobEvent::LeaseExpired { .. }
        | JobEvent::JobResubmitted { .. } => (None, None),
    };
    Some(JobUpdate {
        job_id: stream.id,
        owner,
        event_type: event.event_type.clone(),
        version: event.sequence,
        status: status.map(JobStatus::as_str),
        progress,
        at: payload.at(),
    })
}
