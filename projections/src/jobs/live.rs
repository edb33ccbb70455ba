//! Live job updates, read from the bus as they happen: what `GET /api/v1/jobs/live` streams.
//!
//! The hard idea is resumption. Each update carries its message's sequence in the JetStream
//! stream as its id, so a client that reconnects after update `n` asks for everything after `n`
//! and receives it in order, then live updates, with nothing skipped and nothing repeated. Live
//! updates come from the process's one subscription to job events ([`crate::live::LiveHub`]); what a
//! resuming client missed comes from a short-lived consumer of its own, narrowed by subject to
//! one job or one tenant's jobs ([`crate::live::resume`]). What the feed cannot do is invent
//! events JetStream no longer retains: when the messages after `n` have expired, it says so
//! ([`LiveFeed::resync`](crate::live::LiveFeed)) instead of silently continuing from a later point.
//!
//! An update names the job's owner, so a caller following one owner's jobs sees only theirs.
//! Only a job's first event carries its owner; the feed remembers the owners it has seen and
//! looks the others up in the jobs read model.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::aggregate::Decider;
use domain::event::{RecordedEvent, Subjects};
use domain::identity::{StreamId, TenantId};
use domain::jobs::{JobEvent, JobStatus, TranslationJob};
use futures::future::BoxFuture;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::queries::owner;
use crate::live::{self as hub, Bus, BusUnavailable, Delivered, LiveFeed, LiveMessage, Prepare, Prepared};

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

/// What the process's [`crate::live::LiveHub`] for job updates follows: every tenant's job events.
pub fn hub_subjects(subject_prefix: &str) -> Vec<String> {
    vec![Subjects::new(subject_prefix).for_aggregate_type(TranslationJob::TYPE)]
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

/// An update as every live client is sent it.
pub type PreparedUpdate = LiveMessage<JobUpdate>;

/// Makes [`PreparedUpdate`]s of job events, remembering each job's owner (only a job's first
/// event names it; the others are looked up in the jobs read model once).
#[derive(Debug, Clone)]
pub struct JobUpdates {
    pool: PgPool,
    owners: HashMap<Uuid, Uuid>,
}

/// Owners remembered before the memory starts over.
const OWNERS_REMEMBERED: usize = 100_000;

impl JobUpdates {
    /// Updates whose owners are looked up, when needed, through `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            owners: HashMap::new(),
        }
    }
}

impl Prepare for JobUpdates {
    type Item = PreparedUpdate;

    fn prepare(&mut self, delivered: Delivered) -> BoxFuture<'_, Prepared<PreparedUpdate>> {
        Box::pin(async move {
            let Ok(stream) = delivered.event.aggregate_id.parse::<StreamId>() else {
                return Prepared::Skip;
            };
            if delivered.event.aggregate_type != TranslationJob::TYPE {
                return Prepared::Skip;
            }
            let known = self.owners.get(&stream.id).copied();
            let Some(mut update) = update_of(&delivered.event, known) else {
                return Prepared::Skip;
            };
            if update.owner.is_nil() {
                // Without its owner the update cannot be filtered or shown: followers stop
                // before it rather than skip it.
                match owner(&self.pool, stream.tenant.as_str(), update.job_id).await {
                    Ok(Some(owner)) => update.owner = owner,
                    Ok(None) | Err(_) => return Prepared::Failed,
                }
            }
            if self.owners.len() >= OWNERS_REMEMBERED {
                self.owners.clear();
            }
            self.owners.insert(update.job_id, update.owner);
            LiveMessage::prepared(delivered.sequence, stream.tenant, update)
        })
    }
}

/// Follows `watch` within `tenant`, after update `resume_after` (or from now). The caller has
/// authorized the watch; a job's existence is the caller's to check too.
///
/// # Errors
/// [`BusUnavailable`] when the stream cannot be read.
pub async fn follow(
    bus: Bus<'_, JobUpdates>,
    subject_prefix: &str,
    tenant: TenantId,
    watch: Watch,
    resume_after: Option<u64>,
) -> Result<LiveFeed<PreparedUpdate>, BusUnavailable> {
    let (subjects, kind) = (Subjects::new(subject_prefix), TranslationJob::TYPE);
    let filters = match watch {
        Watch::Job(job) => subjects.for_stream(tenant.as_str(), kind, &format!("{tenant}:{job}")),
        Watch::Jobs { .. } => vec![subjects.for_tenant_type(tenant.as_str(), kind)],
    };
    hub::follow(bus, filters, resume_after, move |prepared| {
        watches(&tenant, watch, prepared)
    })
    .await
}

/// Whether `watch` in `tenant` follows the update.
fn watches(tenant: &TenantId, watch: Watch, prepared: &PreparedUpdate) -> bool {
    prepared.tenant == *tenant
        && match watch {
            Watch::Job(job) => prepared.item.job_id == job,
            Watch::Jobs { owner } => owner.is_none_or(|owner| owner == prepared.item.owner),
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
