use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    DocumentRef, JobCommand, JobError, JobEvent, JobKind, JobOptions, JobSpec, LanguageCode, Lease,
    Priority, Progress, QueueReason, RetryPolicy,
};
use crate::aggregate::Decider;

/// Where a job is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker holds the lease; no progress reported yet.
    Claimed,
    /// A worker holds the lease and reports progress.
    Running,
    /// An attempt failed; the next one is queued at `due_at`.
    RetryScheduled {
        /// When the job goes back to the queue.
        due_at: DateTime<Utc>,
    },
    /// Finished with a result. Terminal.
    Succeeded,
    /// Failed for good (the worker said retrying will not help). Terminal.
    Failed,
    /// Stopped by its owner or an admin. Terminal.
    Cancelled,
    /// Every attempt of the chain failed. Terminal until an admin resubmits it.
    DeadLettered,
}

impl JobStatus {
    /// The name of every status, as [`JobStatus::as_str`] gives it: what a status filter may
    /// ask for. Kept beside `as_str` because `RetryScheduled` carries data, so the statuses
    /// cannot be listed as values; a test checks the two agree.
    pub const NAMES: &'static [&'static str] = &[
        "queued",
        "claimed",
        "running",
        "retry_scheduled",
        "succeeded",
        "failed",
        "cancelled",
        "dead_lettered",
    ];

    /// The status as stored in read models and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Claimed => "claimed",
            Self::Running => "running",
            Self::RetryScheduled { .. } => "retry_scheduled",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::DeadLettered => "dead_lettered",
        }
    }

    /// Whether the job has stopped for good (dead-lettered jobs stop until resubmitted).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Cancelled | Self::DeadLettered
        )
    }
}

/// A submitted job's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The submitting user.
    pub owner: Uuid,
    /// What the job does.
    pub kind: JobKind,
    /// The document's language.
    pub source_language: LanguageCode,
    /// The language wanted.
    pub target_language: LanguageCode,
    /// The document worked on.
    pub source: DocumentRef,
    /// Claim order.
    pub priority: Priority,
    /// Settings for the worker.
    pub options: JobOptions,
    /// The finished job this one works on.
    pub parent_job_id: Option<Uuid>,
    /// Attempts and backoff.
    pub retry_policy: RetryPolicy,
    /// Where it is.
    pub status: JobStatus,
    /// The chain of attempts (1, or more after resubmissions).
    pub chain: u32,
    /// Attempts made in the current chain (claims, including the current one).
    pub attempt: u32,
    /// The current lease: present exactly while claimed or running.
    pub lease: Option<Lease>,
    /// The current attempt's last progress report.
    pub progress: Option<Progress>,
    /// The result, once succeeded.
    pub result: Option<DocumentRef>,
}

/// The translation job aggregate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum TranslationJob {
    /// Nothing submitted under this id: the only command accepted is `Submit`.
    #[default]
    NotSubmitted,
    /// A submitted job.
    Submitted(Box<Job>),
}

impl TranslationJob {
    /// The job, once submitted.
    pub fn job(&self) -> Option<&Job> {
        match self {
            Self::NotSubmitted => None,
            Self::Submitted(job) => Some(job),
        }
    }
}

impl Decider for TranslationJob {
    const TYPE: &'static str = "TranslationJob";
    const SNAPSHOT_SCHEMA: u32 = 1;
    type Command = JobCommand;
    type Event = JobEvent;
    type Error = JobError;

    fn decide(&self, command: JobCommand) -> Result<Vec<JobEvent>, JobError> {
        match (self, command) {
            (Self::NotSubmitted, JobCommand::Submit { spec, at }) => submit(*spec, at),
            (Self::Submitted(_), JobCommand::Submit { .. }) => Err(JobError::AlreadySubmitted),
            (Self::NotSubmitted, _) => Err(JobError::NotFound),
            (Self::Submitted(job), command) => job.decide(command),
        }
    }

    fn evolve(&mut self, event: &JobEvent) {
        match (self, event) {
            (
                this @ Self::NotSubmitted,
                JobEvent::JobSubmitted {
                    owner,
                    kind,
                    source_language,
                    target_language,
                    source,
                    priority,
                    options,
                    parent_job_id,
                    retry_policy,
                    ..
                },
            ) => {
                *this = Self::Submitted(Box::new(Job {
                    owner: *owner,
                    kind: *kind,
                    source_language: source_language.clone(),
                    target_language: target_language.clone(),
                    source: source.clone(),
                    priority: *priority,
                    options: options.clone(),
                    parent_job_id: *parent_job_id,
                    retry_policy: *retry_policy,
                    status: JobStatus::Queued,
                    chain: 1,
                    attempt: 0,
                    lease: None,
                    progress: None,
                    result: None,
                }));
            }
            (Self::Submitted(job), event) => job.evolve(event),
            // `decide` never produces any other pairing; history is applied as recorded.
            (Self::NotSubmitted, _) => {}
        }
    }
}

fn submit(spec: JobSpec, at: DateTime<Utc>) -> Result<Vec<JobEvent>, JobError> {
    let kind = spec.kind.as_str();
    match (spec.kind.needs_parent(), &spec.parent) {
        (true, None) => return Err(JobError::ParentRequired { kind }),
        (false, Some(_)) => return Err(JobError::ParentNotAllowed { kind }),
        _ => {}
    }
    if spec.kind.changes_language() && spec.source_language == spec.target_language {
        return Err(JobError::SameLanguage);
    }
    // A validation or post-edit job works on the parent's result, whatever document the
    // client named.
    let source = spec
        .parent
        .as_ref()
        .map_or(spec.source, |parent| parent.result.clone());
    Ok(vec![
        JobEvent::JobSubmitted {
            owner: spec.owner,
            kind: spec.kind,
            source_language: spec.source_language,
            target_language: spec.target_language,
            source,
            priority: spec.priority,
            options: spec.options,
            parent_job_id: spec.parent.map(|parent| parent.job_id),
            retry_policy: spec.retry_policy,
            at,
        },
        JobEvent::JobQueued {
            reason: QueueReason::Submitted,
            at,
        },
    ])
}

impl Job {
    /// The error for any command but `Resubmit` on a job that has stopped.
    fn finished(&self) -> Result<(), JobError> {
        match self.status {
            JobStatus::Cancelled => Err(JobError::Cancelled),
            status if status.is_terminal() => Err(JobError::AlreadyFinished),
            _ => Ok(()),
        }
    }

    /// Checks that `lease_id` is the job's current, unexpired lease at `at`.
    fn held(&self, lease_id: Uuid, at: DateTime<Utc>) -> Result<&Lease, JobError> {
        self.finished()?;
        match &self.lease {
            Some(lease) if lease.lease_id == lease_id => {
                if at >= lease.expires_at {
                    Err(JobError::LeaseExpired)
                } else {
                    Ok(lease)
                }
            }
            _ => Err(JobError::NotHolder),
        }
    }

    /// What ends an attempt that cannot be retried in this chain: dead-lettering, or back to
    /// the queue when attempts remain.
    fn after_lost_attempt(&self, reason: QueueReason, at: DateTime<Utc>) -> JobEvent {
        if self.attempt < self.retry_policy.max_attempts() {
            JobEvent::JobQueued { reason, at }
        } else {
            JobEvent::JobDeadLettered {
                attempts: self.attempt,
                at,
            }
        }
    }

    fn decide(&self, command: JobCommand) -> Result<Vec<JobEvent>, JobError> {
        let event = match command {
            JobCommand::Submit { .. } => return Err(JobError::AlreadySubmitted),
            JobCommand::Claim { lease, at } => {
                self.finished()?;
                if self.status != JobStatus::Queued {
                    return Err(JobError::NotQueued);
                }
                JobEvent::JobClaimed {
                    lease_id: lease.lease_id,
                    worker: lease.worker,
                    attempt: self.attempt + 1,
                    lease_expires_at: lease.expires_at,
                    at,
                }
            }
            JobCommand::Heartbeat {
                lease_id,
                until,
                at,
            } => {
                let lease = self.held(lease_id, at)?;
                JobEvent::LeaseExtended {
                    lease_id,
                    lease_expires_at: until.max(lease.expires_at),
                    at,
                }
            }
            JobCommand::ReportProgress {
                lease_id,
                progress,
                at,
            } => {
                self.held(lease_id, at)?;
                check_progress(self.progress, progress)?;
                JobEvent::ProgressReported {
                    lease_id,
                    progress,
                    at,
                }
            }
            JobCommand::Complete {
                lease_id,
                result,
                metrics,
                at,
            } => {
                self.held(lease_id, at)?;
                JobEvent::JobSucceeded {
                    lease_id,
                    result,
                    metrics,
                    at,
                }
            }
            JobCommand::Fail {
                lease_id,
                failure,
                jitter,
                at,
            } => {
                self.held(lease_id, at)?;
                let retryable = failure.retryable;
                let failed = JobEvent::JobFailed {
                    lease_id,
                    attempt: self.attempt,
                    failure,
                    at,
                };
                if !retryable {
                    return Ok(vec![failed]);
                }
                let then = if self.attempt < self.retry_policy.max_attempts() {
                    JobEvent::RetryScheduled {
                        next_attempt: self.attempt + 1,
                        // A policy may allow delays past the last representable instant.
                        due_at: at
                            .checked_add_signed(self.retry_policy.backoff(self.attempt, jitter))
                            .unwrap_or(DateTime::<Utc>::MAX_UTC),
                        at,
                    }
                } else {
                    JobEvent::JobDeadLettered {
                        attempts: self.attempt,
                        at,
                    }
                };
                return Ok(vec![failed, then]);
            }
            JobCommand::Cancel { by, reason, at } => {
                self.finished()?;
                JobEvent::JobCancelled { by, reason, at }
            }
            JobCommand::ExpireLease { lease_id, at } => {
                self.finished()?;
                match &self.lease {
                    Some(lease) if lease.lease_id == lease_id && at >= lease.expires_at => {}
                    _ => return Err(JobError::LeaseNotExpired),
                }
                let expired = JobEvent::LeaseExpired {
                    lease_id,
                    attempt: self.attempt,
                    at,
                };
                return Ok(vec![
                    expired,
                    self.after_lost_attempt(QueueReason::LeaseExpired, at),
                ]);
            }
            JobCommand::Requeue { at } => {
                self.finished()?;
                match self.status {
                    JobStatus::RetryScheduled { due_at } if at >= due_at => JobEvent::JobQueued {
                        reason: QueueReason::Retry,
                        at,
                    },
                    _ => return Err(JobError::RetryNotDue),
                }
            }
            JobCommand::Resubmit { by, at } => {
                if self.status != JobStatus::DeadLettered {
                    return Err(JobError::NotDeadLettered);
                }
                return Ok(vec![
                    JobEvent::JobResubmitted {
                        by,
                        chain: self.chain + 1,
                        at,
                    },
                    JobEvent::JobQueued {
                        reason: QueueReason::Resubmitted,
                        at,
                    },
                ]);
            }
        };
        Ok(vec![event])
    }

    fn evolve(&mut self, event: &JobEvent) {
        match event {
            // Only the first event of a stream; a submitted job never sees it again.
            JobEvent::JobSubmitted { .. } => {}
            JobEvent::JobQueued { .. } => {
                self.status = JobStatus::Queued;
                self.lease = None;
                self.progress = None;
            }
            JobEvent::JobClaimed {
                lease_id,
                worker,
                attempt,
                lease_expires_at,
                ..
            } => {
                self.status = JobStatus::Claimed;
                self.attempt = *attempt;
                self.progress = None;
                self.lease = Some(Lease {
                    lease_id: *lease_id,
                    worker: worker.clone(),
                    expires_at: *lease_expires_at,
                });
            }
            JobEvent::LeaseExtended {
                lease_expires_at, ..
            } => {
                if let Some(lease) = &mut self.lease {
                    lease.expires_at = *lease_expires_at;
                }
            }
            JobEvent::ProgressReported { progress, .. } => {
                self.status = JobStatus::Running;
                self.progress = Some(*progress);
            }
            JobEvent::JobSucceeded { result, .. } => {
                self.status = JobStatus::Succeeded;
                self.lease = None;
                self.result = Some(result.clone());
            }
            JobEvent::JobFailed { .. } => {
                self.status = JobStatus::Failed;
                self.lease = None;
            }
            JobEvent::LeaseExpired { .. } => {
                // Always followed by `JobQueued` or `JobDeadLettered` in the same command.
                self.status = JobStatus::Queued;
                self.lease = None;
            }
            JobEvent::RetryScheduled { due_at, .. } => {
                self.status = JobStatus::RetryScheduled { due_at: *due_at };
            }
            JobEvent::JobCancelled { .. } => {
                self.status = JobStatus::Cancelled;
                self.lease = None;
            }
            JobEvent::JobDeadLettered { .. } => {
                self.status = JobStatus::DeadLettered;
                self.lease = None;
            }
            JobEvent::JobResubmitted { chain, .. } => {
                self.chain = *chain;
                self.attempt = 0;
            }
        }
    }
}

fn check_progress(previous: Option<Progress>, reported: Progress) -> Result<(), JobError> {
    if reported.total() == 0 {
        return Err(JobError::InvalidTotal);
    }
    if reported.done() > reported.total() {
        return Err(JobError::ProgressAboveTotal {
            done: reported.done(),
            total: reported.total(),
        });
    }
    if let Some(previous) = previous {
        if previous.total() != reported.total() {
            return Err(JobError::TotalChanged {
                previous: previous.total(),
                reported: reported.total(),
            });
        }
        if reported.done() < previous.done() {
            return Err(JobError::ProgressRegressed {
                previous: previous.done(),
                reported: reported.done(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::DateTime;

    use super::JobStatus;

    /// One status of each variant. The match has an arm per variant and no wildcard, so adding a
    /// status stops it compiling, right beside the list that needs the new sample.
    fn every_status() -> Vec<JobStatus> {
        let samples = vec![
            JobStatus::Queued,
            JobStatus::Claimed,
            JobStatus::Running,
            JobStatus::RetryScheduled {
                due_at: DateTime::UNIX_EPOCH,
            },
            JobStatus::Succeeded,
            JobStatus::Failed,
            JobStatus::Cancelled,
            JobStatus::DeadLettered,
        ];
        for status in &samples {
            match status {
                JobStatus::Queued
                | JobStatus::Claimed
                | JobStatus::Running
                | JobStatus::RetryScheduled { .. }
                | JobStatus::Succeeded
                | JobStatus::Failed
                | JobStatus::Cancelled
                | JobStatus::DeadLettered => {}
            }
        }
        samples
    }

    #[test]
    fn names_list_every_status_once_and_nothing_else() {
        let names: BTreeSet<&str> = JobStatus::NAMES.iter().copied().collect();
        assert_eq!(
            names.len(),
            JobStatus::NAMES.len(),
            "a name is listed twice"
        );
        let mut given = BTreeSet::new();
        for status in every_status() {
            assert!(
                names.contains(status.as_str()),
                "{status:?} is missing from NAMES"
            );
            given.insert(status.as_str());
        }
        let extras: Vec<_> = names.difference(&given).collect();
        assert!(
            extras.is_empty(),
            "NAMES lists names no status has: {extras:?}"
        );
    }
}
