//! The worker's side of a job: claiming one, keeping its lease, and the answers a worker needs.
//!
//! A claim is decided by the job's aggregate, never by the queue read model: the queue only
//! proposes candidates (which may be stale, or wanted by another worker at the same moment), and
//! each candidate is offered to its aggregate until one accepts. Losing such a race is not an
//! error; it only moves on to the next candidate.

use chrono::{DateTime, TimeDelta, Utc};
use domain::aggregate::Rejection;
use domain::identity::{StreamId, TenantId};
use domain::jobs::{Job, JobCommand, JobError, Lease};
use uuid::Uuid;

use super::JobCommands;
use crate::bus::CommandError;
use crate::metadata::CommandContext;

/// What a heartbeat achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// The lease now lasts until then.
    Extended(DateTime<Utc>),
    /// The job was cancelled: the worker stops (nothing else is accepted).
    Cancelled,
}

/// A claimed job as its worker sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Claimed {
    /// The worker holds the job under `lease`.
    Held {
        /// The job.
        job: Box<Job>,
        /// The worker's lease.
        lease: Lease,
    },
    /// A replayed idempotent claim whose job has moved on since: no longer held under it.
    Superseded,
}

impl JobCommands {
    /// Offers job `job_id` to `worker` for `lease_length`. `Ok(None)` when the job is no longer
    /// claimable (taken by another worker, finished, cancelled, or a stale queue row).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn try_claim(
        &self,
        context: &CommandContext,
        worker: &str,
        job_id: Uuid,
        lease_length: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, CommandError<JobError>> {
        let command = JobCommand::Claim {
            lease: Lease {
                lease_id: Uuid::new_v4(),
                worker: worker.to_owned(),
                expires_at: now + lease_length,
            },
            at: now,
        };
        match self.execute(context, job_id, None, command, now).await {
            // With an idempotency key, a retry answers with the job claimed the first time.
            Ok(outcome) => Ok(Some(outcome.stream.id)),
            Err(CommandError::Rejected(Rejection::Domain(
                JobError::NotQueued
                | JobError::AlreadyFinished
                | JobError::Cancelled
                | JobError::NotFound,
            )))
            | Err(CommandError::Conflict) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Job `job_id` as claimed by `worker`.
    ///
    /// # Errors
    /// [`JobError::NotFound`], or a store failure.
    pub async fn claimed(
        &self,
        tenant: &TenantId,
        job_id: Uuid,
        worker: &str,
    ) -> Result<Claimed, CommandError<JobError>> {
        let job = self.job(tenant, job_id).await?;
        Ok(
            match job.lease.clone().filter(|lease| lease.worker == worker) {
                Some(lease) => Claimed::Held {
                    job: Box::new(job),
                    lease,
                },
                None => Claimed::Superseded,
            },
        )
    }

    /// Extends the lease on `job_id` to `until`, or says the job was cancelled.
    ///
    /// # Errors
    /// See [`JobCommands::execute`].
    pub async fn heartbeat(
        &self,
        context: &CommandContext,
        job_id: Uuid,
        lease_id: Uuid,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Heartbeat, CommandError<JobError>> {
        let command = JobCommand::Heartbeat {
            lease_id,
            until,
            at: now,
        };
        match self.execute(context, job_id, None, command, now).await {
            Ok(_) => Ok(Heartbeat::Extended(until)),
            Err(CommandError::Rejected(Rejection::Domain(JobError::Cancelled))) => {
                Ok(Heartbeat::Cancelled)
            }
            Err(error) => Err(error),
        }
    }

    /// Job `job_id`'s current state.
    ///
    /// # Errors
    /// [`JobError::NotFound`] when it was never submitted, or a store failure.
    pub async fn job(
        &self,
        tenant: &TenantId,
        job_id: Uuid,
    ) -> Result<Job, CommandError<JobError>> {
        let job = self.load(&StreamId::new(tenant.clone(), job_id)).await?;
        job.state()
            .job()
            .cloned()
            .ok_or(CommandError::Rejected(Rejection::Domain(
                JobError::NotFound,
            )))
    }
}
